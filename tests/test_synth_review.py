"""`breakglass synth` output a security reviewer can trust: same program, same bytes; secrets
hidden; values only AWS knows marked; the configured region and account; the exports; a summary,
a filter; and every file error in one line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from pulumi.runtime import rpc
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.local.synth import SynthError, synth, synth_directory, to_plain

runner = CliRunner()
QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart"
LINK_KEY_VALUE = "aws:secretsmanager/secretVersion:SecretVersion"

PROGRAM = textwrap.dedent(
    """
    import json
    import pulumi
    import pulumi_aws as aws

    class Api(pulumi.ComponentResource):
        def __init__(self, name):
            super().__init__("breakglass:index:Api", name, None, None)
            child = pulumi.ResourceOptions(parent=self)
            self.api = aws.apigatewayv2.Api(f"{name}-api", protocol_type="HTTP", opts=child)
            # Registered only once the API's outputs are back, yet constructed before "late" below.
            aws.iam.Policy(
                f"{name}-invoke",
                policy=self.api.execution_arn.apply(
                    lambda arn: json.dumps({
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{arn}/*/POST/x"},
                            {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": f"{arn}/*/GET/x"},
                        ],
                    })
                ),
                opts=child,
            )
            self.register_outputs({})

    api = Api("door")
    aws.s3.Bucket("late")
    caller = aws.get_caller_identity()
    aws.secretsmanager.SecretVersion(
        "key-value", secret_id="key", secret_string=pulumi.Output.secret("hunter2-the-real-key")
    )
    aws.lambda_.Function(
        "fn",
        role=aws.iam.Role("fn-role", assume_role_policy="{}").arn,
        environment={"variables": {"TOKEN": pulumi.Output.secret("hunter2-nested"), "PLAIN": "shown"}},
    )
    pulumi.export("answer", 42)
    pulumi.export("account", caller.account_id)
    pulumi.export("token", pulumi.Output.secret("hunter2-exported"))
    """
)
SECRETS = ("hunter2", rpc._special_sig_key, rpc._special_secret_sig)


@pytest.fixture
def program_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "program"
    directory.mkdir()
    (directory / "__main__.py").write_text(PROGRAM)
    return directory


def synth_cli(*args: str) -> str:
    result = runner.invoke(app, ["synth", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_resources_are_listed_in_the_order_the_program_constructs_them(program_dir: Path) -> None:
    # The policy waits for the API's outputs, so it reaches the engine after "late"; the listing
    # must not depend on which registration thread came first.
    names = [r.name for r in synth_directory(program_dir).resources]
    assert names == ["door", "door-api", "door-invoke", "late", "key-value", "fn-role", "fn"]


def test_two_synths_of_the_quickstart_print_the_same_bytes(tmp_path: Path) -> None:
    assert synth_cli(str(QUICKSTART)) == synth_cli(str(QUICKSTART))
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    synth_cli(str(QUICKSTART), "--json", str(first))
    synth_cli(str(QUICKSTART), "--json", str(second))
    assert first.read_bytes() == second.read_bytes()


def test_the_link_key_stays_random_and_a_later_pulumi_up_keeps_the_deployed_one() -> None:
    keys = [synth_directory(QUICKSTART).one(LINK_KEY_VALUE) for _ in range(2)]
    # Each run draws a new key (never a predictable one), which is why synth must hide it ...
    values = [k.inputs["secretString"]["value"] for k in keys]
    assert values[0] != values[1] and len(values[0]) >= 64
    assert all(k.inputs["secretString"][rpc._special_sig_key] == rpc._special_secret_sig for k in keys)
    # ... and why the component must tell Pulumi to keep the deployed key on every later update.
    assert keys[0].ignore_changes == ["secretString"]


def test_the_quickstart_link_key_is_never_printed() -> None:
    tree = synth_cli(str(QUICKSTART), "--filter", "*link-key*")
    document = synth_cli(str(QUICKSTART), "--json", "-", "--filter", "*link-key*")
    assert "secretString = [secret]" in tree
    assert json.loads(document)["resources"][-1]["inputs"]["secretString"] == "[secret]"
    for text in (tree, document):
        assert rpc._special_sig_key not in text and rpc._special_secret_sig not in text


def test_secrets_are_shown_as_secret_everywhere_nested_in_the_tree_and_the_json(program_dir: Path) -> None:
    tree = synth_cli(str(program_dir))
    document = json.loads(synth_cli(str(program_dir), "--json", "-"))
    for text in (tree, json.dumps(document)):
        for leaked in SECRETS:
            assert leaked not in text
    by_name = {r["name"]: r for r in document["resources"]}
    assert by_name["key-value"]["inputs"]["secretString"] == "[secret]"
    # Pulumi makes the whole input secret when a value inside it is; the rest stays readable.
    assert by_name["fn"]["inputs"]["environment"] == "[secret]"
    assert by_name["fn"]["inputs"]["role"] == "arn:aws:iam::123456789012:role/fn-role"
    assert document["outputs"]["token"] == "[secret]"
    assert "token = [secret]" in tree


def test_a_secret_wrapped_at_any_depth_is_shown_as_secret() -> None:
    wrapped = {rpc._special_sig_key: rpc._special_secret_sig, "value": "hunter2"}
    value = {"a": [1, {"b": wrapped}], "c": (wrapped,), "d": wrapped}
    assert to_plain(value) == {"a": [1, {"b": "[secret]"}], "c": ["[secret]"], "d": "[secret]"}


def test_whole_numbers_read_as_the_program_wrote_them() -> None:
    assert to_plain({"maxSessionDuration": 3600.0, "threshold": 0.5, "days": [365.0]}) == {
        "maxSessionDuration": 3600,
        "threshold": 0.5,
        "days": [365],
    }


def test_a_value_only_aws_knows_is_marked_unknown_never_none(program_dir: Path) -> None:
    document = json.loads(synth_cli(str(program_dir), "--json", "-"))
    invoke = next(r for r in document["resources"] if r["name"] == "door-invoke")
    statements = json.loads(invoke["inputs"]["policy"])["Statement"]
    assert statements[0]["Resource"] == "<unknown: door-api.executionArn>/*/POST/x"
    assert "None/" not in json.dumps(document)


def test_fake_arns_name_the_configured_region_and_account(program_dir: Path) -> None:
    document = json.loads(
        synth_cli(
            str(program_dir), "--json", "-", "--config", "aws:region=eu-west-1", "--account", "111122223333"
        )
    )
    text = json.dumps(document)
    assert "arn:aws:iam::111122223333:role/fn-role" in text
    assert "123456789012" not in text and "us-east-1" not in text
    assert document["outputs"]["account"] == "111122223333"


def test_the_account_may_come_from_the_aws_providers_allowed_account_ids(program_dir: Path) -> None:
    output = synth_cli(str(program_dir), "--json", "-", "--config", 'aws:allowedAccountIds=["444455556666"]')
    assert json.loads(output)["outputs"]["account"] == "444455556666"


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["--account", "12345"], "--account '12345' is not a 12-digit account id", "--account 111122223333"),
        (
            ["--config", "aws:allowedAccountIds=[12]"],
            "aws:allowedAccountIds: expected 12-digit account ids",
            'aws:allowedAccountIds=["111122223333"]',
        ),
    ],
)
def test_a_malformed_account_is_refused_naming_the_field(
    program_dir: Path, args: list[str], message: str, hint: str
) -> None:
    result = runner.invoke(app, ["synth", str(program_dir), *args])
    assert result.exit_code == 2
    error, advice = result.output.strip().splitlines()
    assert message in error and hint in advice
    assert "Traceback" not in result.output


def test_the_tree_ends_with_the_stacks_exports(program_dir: Path) -> None:
    tree = synth_cli(str(program_dir))
    exports = tree[tree.index("Outputs (3)") :]
    assert "answer = 42" in exports
    assert "account = 123456789012" in exports


def test_summary_counts_types_lists_each_policy_with_its_statements_and_the_exports(
    program_dir: Path,
) -> None:
    text = synth_cli(str(program_dir), "--summary")
    assert f"{program_dir}: 7 resources, 3 outputs" in text
    assert "     1  aws:iam/policy:Policy" in text
    assert "Policies: 1 documents, 2 statements" in text
    assert "     2  door-invoke  policy  (Policy)" in text
    assert '  token = "[secret]"' in text
    found = json.loads(synth_cli(str(program_dir), "--summary", "--json", "-"))
    assert found["count"] == 7
    assert found["types"]["aws:s3/bucket:Bucket"] == 1
    assert found["policies"] == [
        {"resource": "door-invoke", "type": "aws:iam/policy:Policy", "input": "policy", "statements": 2}
    ]
    assert found["outputs"] == {"account": "123456789012", "answer": 42, "token": "[secret]"}


def test_summary_of_the_quickstart_names_the_locked_trust_of_every_emergency_role() -> None:
    found = json.loads(synth_cli(str(QUICKSTART), "--summary", "--json", "-", "--filter", "Role"))
    trusts = [p for p in found["policies"] if p["input"] == "assumeRolePolicy"]
    assert {p["resource"] for p in trusts} >= {
        f"breakglass-{t}-role" for t in ("halt", "operator", "admin", "drill")
    }
    assert set(found["types"]) == {"aws:iam/role:Role"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["aws:s3/*"], ["late"]),  # a glob on the type token
        (["Policy"], ["door-invoke"]),  # the type's name
        (["door"], ["door", "door-api", "door-invoke"]),  # a component, with everything inside it
        (["fn*", "late"], ["late", "fn-role", "fn"]),  # repeatable: any may match
    ],
)
def test_filter_shows_the_resources_that_match_a_type_or_a_name(
    program_dir: Path, filters: list[str], expected: list[str]
) -> None:
    args = [arg for f in filters for arg in ("--filter", f)]
    document = json.loads(synth_cli(str(program_dir), "--json", "-", *args))
    assert [r["name"] for r in document["resources"]] == expected


def test_a_filtered_resource_says_which_component_it_lives_in(program_dir: Path) -> None:
    tree = synth_cli(str(program_dir), "--filter", "aws:apigatewayv2/*")
    assert "aws:apigatewayv2/api:Api door-api (in door)" in tree
    assert "door-invoke" not in tree


def test_a_filter_that_matches_nothing_is_refused(program_dir: Path) -> None:
    result = runner.invoke(app, ["synth", str(program_dir), "--filter", "aws:iam/rol"])
    assert result.exit_code == 2
    assert "no resource matches --filter aws:iam/rol" in result.output


def _file_error_cases(tmp_path: Path, program_dir: Path) -> dict[str, tuple[list[str], str]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    not_utf8 = tmp_path / "not-readable"
    (not_utf8 / "__main__.py").mkdir(parents=True)
    bad_project = tmp_path / "bad-project"
    (bad_project / "Pulumi.yaml").mkdir(parents=True)
    return {
        "--json is a directory": (
            [str(program_dir), "--json", str(tmp_path)],
            f"cannot write --json {tmp_path}",
        ),
        "--json parent missing": (
            [str(program_dir), "--json", str(tmp_path / "no" / "out.json")],
            "No such file or directory",
        ),
        "--json parent is a file": (
            [str(program_dir), "--json", str(a_file / "out.json")],
            "Not a directory",
        ),
        "program dir missing": ([str(tmp_path / "nowhere")], "does not exist"),
        "program dir is a file": ([str(a_file)], "is not a directory"),
        "no __main__.py": ([str(tmp_path)], "no Pulumi program in"),
        "__main__.py unreadable": ([str(not_utf8)], "cannot read"),
        "Pulumi.yaml unreadable": ([str(bad_project)], "cannot read"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "--json is a directory",
        "--json parent missing",
        "--json parent is a file",
        "program dir missing",
        "program dir is a file",
        "no __main__.py",
        "__main__.py unreadable",
        "Pulumi.yaml unreadable",
    ],
)
def test_every_file_error_is_one_line_without_a_traceback(
    tmp_path: Path, program_dir: Path, case: str
) -> None:
    args, message = _file_error_cases(tmp_path, program_dir)[case]
    result = runner.invoke(app, ["synth", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0], result.output
    assert len(lines) == 2  # the error and what to do
    assert "Traceback" not in result.output


def test_a_program_registering_one_urn_twice_is_refused_as_pulumi_up_refuses_it() -> None:
    import pulumi_aws as aws

    def program() -> None:
        aws.s3.Bucket("twice")
        aws.s3.Bucket("twice")

    with pytest.raises(SynthError, match=r"duplicate resource URN .*aws:s3/bucket:Bucket::twice"):
        synth(program)


def test_urns_hold_the_whole_chain_of_parent_types_as_the_engines_do() -> None:
    import pulumi
    import pulumi_aws as aws

    def program() -> None:
        # One child name under two parents of one type, each under a parent of its own type:
        # distinct URNs for the engine (the SDK's mock would give both the same one).
        for outer in ("bench:index:A", "bench:index:B"):
            top = pulumi.ComponentResource(outer, outer.rsplit(":", 1)[-1].lower())
            inner = pulumi.ComponentResource(
                "bench:index:Inner", "inner", opts=pulumi.ResourceOptions(parent=top)
            )
            aws.s3.Bucket("same", opts=pulumi.ResourceOptions(parent=inner))

    urns = [r.urn for r in synth(program).resources if r.name == "same"]
    assert urns == [
        "urn:pulumi:dev::breakglass::bench:index:A$bench:index:Inner$aws:s3/bucket:Bucket::same",
        "urn:pulumi:dev::breakglass::bench:index:B$bench:index:Inner$aws:s3/bucket:Bucket::same",
    ]
