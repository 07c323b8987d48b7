// The quickstart stack (examples/quickstart/__main__.py) from TypeScript, through the breakglass
// component provider. Names are the schema's camelCase ones; inside the untyped settings
// (`sealedAccess`, `tiers`, `audit`) keys stay the Python names (docs/other-languages.md).
// tests/test_other_language_examples.py checks every name below against the package schema.
import * as pulumi from "@pulumi/pulumi";
import * as breakglass from "@pulumi/breakglass";

const config = new pulumi.Config();
const account = "123456789012";
const endpoint = config.get("endpointName") ?? "chat-prod";
const list = (value: string | undefined, fallback: string): string[] =>
    (value ?? fallback).split(",").filter((item) => item !== "");

const bg = new breakglass.BreakGlass("breakglass", {
    deployment: config.get("deployment") ?? "quickstart",
    // Who may ask (their own everyday principals) and who approves (enrolled user ids).
    requesters: list(config.get("responders"), `arn:aws:iam::${account}:role/oncall-ml`),
    approvers: list(config.get("approvers"), "ann,bob,cat"),
    securityAdmins: list(config.get("securityAdmins"), `arn:aws:iam::${account}:role/cloud-admin`),
    senderEmail: config.get("senderEmail") ?? "breakglass@example.com",
    alertEmails: [config.get("alertEmail") ?? "security@example.com"],
    // The kill switch: stop the model by hand, or when its 5xx rate trips the alarm.
    haltTargets: [
        {
            id: "chat",
            endpointName: endpoint,
            invokerRoles: [config.get("invokerRole") ?? "chat-api"],
            modes: ["deny-invoke", "delete-endpoint"],
        },
    ],
    // The last resort when the workflow, SES, the identity provider or the region is down.
    sealedAccess: {
        users: list(config.get("sealedUsers"), "breakglass-sealed"),
        managed_policy_arns: ["arn:aws:iam::aws:policy/AdministratorAccess"],
        alert_emails: list(config.get("sealedAlertEmails"), ""),
    },
    tripwires: [
        {
            name: "chat-5xx",
            namespace: "AWS/SageMaker",
            metricName: "Invocation5XXErrors",
            dimensions: { EndpointName: endpoint, VariantName: "AllTraffic" },
            threshold: 5,
            evaluationPeriods: 3,
            datapointsToAlarm: 2,
            mode: "deny-invoke",
            targets: ["chat"],
        },
    ],
});

export const accessApiUrl = bg.accessApiUrl;
export const approvalUrl = bg.approvalUrl;
export const stateMachineArn = bg.stateMachineArn;
export const roleArns = bg.roleArns;
export const auditBucket = bg.auditBucket;
export const athenaWorkgroup = bg.athenaWorkgroup;
export const alertTopicArn = bg.alertTopicArn;
export const haltFunction = bg.haltFunction;
export const resumeFunction = bg.resumeFunction;
