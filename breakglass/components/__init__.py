from breakglass.components.audit_queries import AuditQueries as AuditQueries
from breakglass.components.audit_queries import AuditQueriesArgs as AuditQueriesArgs
from breakglass.components.audit_trail import AuditTrail as AuditTrail
from breakglass.components.audit_trail import AuditTrailArgs as AuditTrailArgs
from breakglass.components.emergency_role import EmergencyRole as EmergencyRole
from breakglass.components.emergency_role import EmergencyRoleArgs as EmergencyRoleArgs
from breakglass.components.halt_actions import HaltActions as HaltActions
from breakglass.components.halt_actions import HaltActionsArgs as HaltActionsArgs
