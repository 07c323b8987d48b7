"""The named queries and the Glue table definitions, as pure data: structure and parameters."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from breakglass.contracts import EVENT_COLUMNS
from breakglass.local.athena import parse_hive_type
from breakglass.policies.naming import EMERGENCY_ROLE_PREFIX
from breakglass.policies.queries import (
    ALL_REGIONS,
    CLOUDTRAIL_TABLE,
    EVENTS_TABLE,
    NAMED_QUERIES,
    NamedQuery,
    QueryError,
    cloudtrail_table,
    events_table,
    get_query,
    results_bucket_policy,
    sql_literal,
)
from breakglass.validation import ConfigError

SESSION = {"source_identity": "alice", "start": "2025-03-14T09:00:00Z", "end": "2025-03-14T10:00:00Z"}


def test_the_named_queries_are_exactly_the_seven_the_auditors_rely_on() -> None:
    assert list(NAMED_QUERIES) == [
        "emergency_sessions",
        "session_actions",
        "approvals",
        "halts",
        "access_outside_grants",
        "unreviewed_events",
        "tampering",
    ]


@pytest.mark.parametrize("name", list(NAMED_QUERIES))
def test_every_query_is_valid_trino_and_transpiles_to_duckdb(name: str) -> None:
    query = NAMED_QUERIES[name]
    tree = sqlglot.parse_one(query.sql, read="trino")
    assert isinstance(tree, exp.Query)
    assert len(list(tree.find_all(exp.Placeholder))) == len(query.placeholders)
    assert sqlglot.transpile(query.sql, read="trino", write="duckdb")[0]
    tables = {t.name for t in tree.find_all(exp.Table)}
    assert tables & {CLOUDTRAIL_TABLE, EVENTS_TABLE}


def test_emergency_queries_match_roles_by_the_shared_name_prefix() -> None:
    for name in ("emergency_sessions", "access_outside_grants"):
        assert f"LIKE '{EMERGENCY_ROLE_PREFIX}%'" in NAMED_QUERIES[name].sql


def test_session_actions_filters_the_date_partition_with_only_parameters() -> None:
    bound = get_query("session_actions").bind(SESSION)
    where = sqlglot.parse_one(bound, read="trino").find(exp.Where)
    assert where is not None
    date_filters = [
        node
        for node in where.find_all(exp.Between)
        if {c.name for c in node.find_all(exp.Column)} == {"date"}
    ]
    assert len(date_filters) == 1
    assert "'2025-03-14T09:00:00Z'" in date_filters[0].sql("trino")


def test_bind_fills_every_placeholder_and_refuses_values_that_could_break_the_literal() -> None:
    query = get_query("session_actions")
    bound = query.bind(SESSION)
    assert "?" not in bound
    assert bound.endswith(
        "useridentity.sessioncontext.sourceidentity = 'alice'\nORDER BY eventtime, eventid\n"
    )
    with pytest.raises(ConfigError, match=r"^source_identity:"):
        query.bind({**SESSION, "source_identity": "x' OR '1'='1"})
    assert sql_literal("o'neil") == "'o''neil'"


def test_execution_parameters_are_quoted_literals_in_placeholder_order() -> None:
    assert get_query("session_actions").execution_parameters(SESSION) == [
        "'2025-03-14T09:00:00Z'",
        "'2025-03-14T10:00:00Z'",
        "'2025-03-14T09:00:00Z'",
        "'2025-03-14T10:00:00Z'",
        "'alice'",
    ]
    assert get_query("tampering").execution_parameters({"audit_bucket": "audit-b"}) == ["'audit-b'"]
    assert get_query("halts").execution_parameters({}) == []


def test_an_unknown_query_names_every_query_that_exists() -> None:
    with pytest.raises(QueryError) as caught:
        get_query("sessions")
    assert "unknown query 'sessions'" in str(caught.value)
    for name in NAMED_QUERIES:
        assert name in str(caught.value)


def test_a_missing_parameter_is_named_with_what_to_pass() -> None:
    with pytest.raises(QueryError, match=r"session_actions needs --param end=<ISO-8601 end"):
        get_query("session_actions").bind({"source_identity": "alice", "start": "2025-03-14T09:00:00Z"})


def test_an_unknown_parameter_lists_the_accepted_ones() -> None:
    with pytest.raises(QueryError, match="has no parameter 'user'; it accepts: source_identity, start, end"):
        get_query("session_actions").bind({**SESSION, "user": "x"})
    with pytest.raises(QueryError, match="it accepts: none"):
        get_query("halts").bind({"start": "2025-03-14"})


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({**SESSION, "start": "yesterday"}, "start"),
        ({**SESSION, "end": "2025-02-30"}, "end"),
        ({**SESSION, "end": "2025-03-13T00:00:00Z"}, "end"),  # before start
        ({**SESSION, "source_identity": "a"}, "source_identity"),
    ],
)
def test_malformed_parameter_values_are_rejected_naming_the_parameter(
    params: dict[str, str], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: "):
        get_query("session_actions").bind(params)


def test_timestamps_with_offsets_or_plain_dates_are_accepted() -> None:
    query = get_query("session_actions")
    assert "'2025-03-14'" in query.bind({**SESSION, "start": "2025-03-14"})
    assert "'2025-03-14T11:00:00+02:00'" in query.bind({**SESSION, "start": "2025-03-14T11:00:00+02:00"})


def test_tampering_rejects_a_value_that_is_not_a_bucket_name() -> None:
    with pytest.raises(ConfigError, match=r"^audit_bucket: must be an S3 bucket name"):
        get_query("tampering").bind({"audit_bucket": "s3://x"})


def test_a_query_whose_placeholders_do_not_match_its_text_cannot_be_defined() -> None:
    with pytest.raises(ValueError, match="1 '\\?' in the SQL, 0 named"):
        NamedQuery("broken", "d", "SELECT ? FROM t")


def test_athena_descriptions_fit_and_tell_the_execution_parameter_order() -> None:
    for query in NAMED_QUERIES.values():
        assert len(query.athena_description()) <= 1024
    assert (
        "Execution parameters, in order: start, end, start, end, source_identity"
        in get_query("session_actions").athena_description()
    )


def test_cloudtrail_table_projects_region_and_date_onto_the_trail_layout() -> None:
    table = cloudtrail_table(bucket="audit-b", account_id="111122223333", cloudtrail_prefix="org/")
    assert table.name == "cloudtrail_logs"
    assert table.partition_keys == (("region", "string"), ("date", "string"))
    assert table.location == "s3://audit-b/org/AWSLogs/111122223333/CloudTrail/"
    assert table.parameters["storage.location.template"] == (
        "s3://audit-b/org/AWSLogs/111122223333/CloudTrail/${region}/${date}"
    )
    assert table.parameters["projection.enabled"] == "true"
    assert table.parameters["projection.date.format"] == "yyyy/MM/dd"
    assert table.parameters["projection.date.range"] == "2024/01/01,NOW"
    assert table.parameters["projection.region.values"].split(",") == list(ALL_REGIONS)
    assert table.input_format == "com.amazon.emr.cloudtrail.CloudTrailInputFormat"


def test_cloudtrail_columns_follow_the_standard_athena_ddl() -> None:
    columns = dict(cloudtrail_table(bucket="b", account_id="111122223333").columns)
    for name in (
        "eventversion",
        "eventtime",
        "eventsource",
        "eventname",
        "awsregion",
        "sourceipaddress",
        "useragent",
        "errorcode",
        "errormessage",
        "requestparameters",
        "responseelements",
        "additionaleventdata",
        "requestid",
        "eventid",
        "eventtype",
        "recipientaccountid",
        "sharedeventid",
        "vpcendpointid",
    ):
        assert columns[name] == "string"
    identity = parse_hive_type(columns["useridentity"])
    assert identity[0] == "struct"
    fields = dict(identity[1])
    session = dict(fields["sessioncontext"][1])
    assert session["sourceidentity"] == "string"
    assert dict(session["attributes"][1])["mfaauthenticated"] == "string"
    assert dict(session["sessionissuer"][1])["arn"] == "string"
    assert parse_hive_type(columns["resources"]) == (
        "array",
        ("struct", (("arn", "string"), ("accountid", "string"), ("type", "string"))),
    )


def test_events_table_is_the_event_schema_projected_by_day() -> None:
    table = events_table(bucket="audit-b", events_prefix="breakglass-events")
    assert table.columns == EVENT_COLUMNS
    assert table.partition_keys == (("dt", "string"),)
    assert table.parameters["projection.dt.format"] == "yyyy-MM-dd"
    assert table.parameters["storage.location.template"] == "s3://audit-b/breakglass-events/dt=${dt}/"
    assert table.serde == "org.apache.hive.hcatalog.data.JsonSerDe"


def test_results_bucket_policy_denies_every_request_without_tls() -> None:
    policy = results_bucket_policy("arn:aws:s3:::results")
    (statement,) = policy["Statement"]  # type: ignore[misc]
    assert statement == {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::results", "arn:aws:s3:::results/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
