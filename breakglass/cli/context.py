"""What every command gets from the root: settings, an AWS session, the chosen deployment.

A command takes ``ctx: typer.Context`` and calls :func:`get_context`::

    @app.command("status")
    def status(ctx: typer.Context, request_id: str, ...) -> None:
        cli = get_context(ctx)
        deployment = cli.deployment()            # loads /breakglass/<name>/ once, or fails cleanly
        url = deployment.need("access_api_url")  # a clear error if this stack did not publish it
        session = cli.session()                  # boto3.Session honouring --profile/--region
        sfn = cli.client("stepfunctions")        # in the deployment's region, honouring --endpoint-url
        api = cli.access_api()                   # the IAM-authorized access API, requests signed (SigV4)
        record = api.get(f"/requests/{request_id}")

Nothing touches AWS until a command asks: ``--help``, ``synth`` and ``audit query --local`` work
with no credentials at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import typer
from botocore.config import Config

import breakglass
from breakglass.cli import config
from breakglass.cli.api import AccessApi
from breakglass.cli.deployment import Deployment, list_deployments, load_deployment
from breakglass.cli.errors import BadInput

USER_AGENT = f"breakglass/{breakglass.__version__}"


def make_session(profile: str | None = None, region: str | None = None) -> boto3.Session:
    """A boto3 session for ``profile`` and ``region`` (None: boto3's own defaults and AWS_* env)."""
    return boto3.Session(profile_name=profile, region_name=region)


def make_client(
    session: boto3.Session, service: str, *, region: str | None = None, endpoint_url: str | None = None
) -> Any:
    """A client of ``service``. ``endpoint_url`` None leaves boto3 to honour ``AWS_ENDPOINT_URL``."""
    kwargs: dict[str, Any] = {
        "config": Config(user_agent_extra=USER_AGENT, retries={"mode": "standard", "max_attempts": 5})
    }
    if region:
        kwargs["region_name"] = region
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return session.client(service, **kwargs)  # type: ignore[call-overload]


@dataclass
class CliContext:
    """One invocation's global options; settings, session and deployment are made on first use.

    Lazily, so that ``--help`` and the offline commands work even with a broken config file.
    """

    deployment_option: str | None = None
    profile_option: str | None = None
    region_option: str | None = None
    endpoint_url_option: str | None = None
    _settings: config.Settings | None = field(default=None, repr=False)
    _session: boto3.Session | None = field(default=None, repr=False)
    _deployment: Deployment | None = field(default=None, repr=False)

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            self._settings = config.resolve(
                deployment=self.deployment_option,
                profile=self.profile_option,
                region=self.region_option,
                endpoint_url=self.endpoint_url_option,
            )
        return self._settings

    def session(self) -> boto3.Session:
        if self._session is None:
            self._session = make_session(self.settings.profile.value, self.settings.region.value)
        return self._session

    @property
    def region(self) -> str | None:
        """The region AWS calls go to: the deployment's once it is loaded, else the session's."""
        if self._deployment is not None and self._deployment.region:
            return self._deployment.region
        return self.session().region_name

    def client(self, service: str, *, region: str | None = None) -> Any:
        return make_client(
            self.session(),
            service,
            region=region or self.region,
            endpoint_url=self.settings.endpoint_url.value,
        )

    def deployment_name(self) -> str:
        """The chosen deployment's name; without one, an error listing those that exist."""
        name = self.settings.deployment.value
        if name is not None:
            return name
        ssm = self.client("ssm")
        existing = list(list_deployments(ssm))
        listed = ", ".join(existing) if existing else "none"
        raise BadInput(
            f"no deployment chosen; deployments in {self.session().region_name}: {listed}",
            hint=f'pass --deployment NAME, set {config.ENV_DEPLOYMENT}, or put deployment = "NAME" '
            f"in {self.settings.config_file}",
        )

    def deployment(self) -> Deployment:
        if self._deployment is None:
            name = self.deployment_name()
            self._deployment = load_deployment(self.client("ssm"), name, region=self.session().region_name)
        return self._deployment

    def access_api(self) -> AccessApi:
        """A SigV4-signing client of the deployment's IAM-authorized access API."""
        deployment = self.deployment()
        region = deployment.region or self.region
        if not region:
            raise BadInput("no AWS region for the access API", hint="pass --region")
        return AccessApi(self.session(), deployment.need("access_api_url"), region)

    def use_deployment(self, deployment: Deployment) -> None:
        """Set the deployment (tests, or a command that found it another way)."""
        self._deployment = deployment


def get_context(ctx: typer.Context) -> CliContext:
    """The :class:`CliContext` the root callback stored (resolved from the environment if absent)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliContext):
        root.obj = CliContext()
    return root.obj
