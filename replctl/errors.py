"""One error tree, one exit code per class.

Every failure replctl can explain is a `ReplctlError` subclass carrying a message that says
where, what and what to do. The CLI has a single catch site that prints the message to stderr
and exits with the class's code; `--debug` re-raises instead. Codes are fixed (the README lists
them) so scripts can branch on them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; stable, documented in the README."""

    OK = 0
    FAILURE = 1  # an unexpected error (a bug): shown with --debug
    CONFIG = 2  # bad environments.yaml or bad command-line usage
    AWS_ACCESS = 3  # credentials, region, endpoint or assume-role problems
    CHECKS_FAILED = 4  # validate-accounts found problems
    TEMPLATE = 5  # the template does not parse or fails cfn-lint
    DEPLOY_FAILED = 6  # a StackSet operation or an environment's gate failed
    TIMEOUT = 7  # gave up waiting on an operation (it keeps running in AWS)
    ABORTED = 8  # not confirmed, or refused to prompt without a terminal
    REFUSED = 9  # a safety rule refused the request (e.g. upstream not current)
    CHANGES_PENDING = 10  # plan/--dry-run with --detailed-exitcode: there is work to do
    DEGRADED = 20  # status: at least one environment degraded
    UNHEALTHY = 21  # status: at least one environment unhealthy
    UNKNOWN = 22  # status: not enough data to judge
    DRIFTED = 30  # drift: something drifted
    SANDBOX = 40  # the local sandbox could not be started or reached
    INTERRUPTED = 130  # Ctrl-C


class ReplctlError(Exception):
    """Base class: a failure with a message for the operator and a fixed exit code."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(ReplctlError):
    """environments.yaml (or a command-line value) is wrong; lists every problem."""

    exit_code = ExitCode.CONFIG

    def __init__(self, message: str, problems: tuple[str, ...] = (), *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class AwsAccessError(ReplctlError):
    """Credentials, region, endpoint or role assumption failed."""

    exit_code = ExitCode.AWS_ACCESS


class ChecksFailed(ReplctlError):
    """validate-accounts ran and at least one check failed."""

    exit_code = ExitCode.CHECKS_FAILED


class TemplateError(ReplctlError):
    """The template cannot be used: YAML error or cfn-lint findings."""

    exit_code = ExitCode.TEMPLATE


class DeployError(ReplctlError):
    """A StackSet operation failed or an environment's gate did not pass."""

    exit_code = ExitCode.DEPLOY_FAILED


class WaitTimeout(ReplctlError):
    """An operation did not finish in time; it is still running in AWS."""

    exit_code = ExitCode.TIMEOUT


class Aborted(ReplctlError):
    """The operator declined, or there was nobody to ask."""

    exit_code = ExitCode.ABORTED


class Refused(ReplctlError):
    """A safety rule refused the request."""

    exit_code = ExitCode.REFUSED


class SandboxError(ReplctlError):
    """The local sandbox could not be started, reached or bootstrapped."""

    exit_code = ExitCode.SANDBOX
