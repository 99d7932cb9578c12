"""The errors imageworks-loader raises on purpose.

Every error meant for a user derives from ``RegistryError``, carries the one
line the user will read, and knows its exit code. The front doors map them
once (``loader.operations.invoke``); nothing else in the package prints or exits.

Exit codes: 0 success; 1 usage error, unknown model, missing capability, a
backend that fails; 2 integrity failure; 3 internal error: an exception the
loader did not raise on purpose is a bug, reported in one line as
``InternalError`` (``IMAGEWORKS_LOADER_DEBUG=1`` adds its traceback).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 1  # usage errors, unknown models, missing capabilities, backend failures
EXIT_INTEGRITY = 2  # a version lock violated, a blob that does not match its digest
EXIT_INTERNAL = 3  # a bug: an exception the loader did not raise on purpose


class RegistryError(Exception):
    """Base of every error the loader reports to a user."""

    exit_code = EXIT_USAGE


# --- reading and validating the registry ---------------------------------


class RegistryLoadError(RegistryError, RuntimeError):
    """A layer file or the config cannot be read, parsed or validated
    (also a ``RuntimeError``, as ImageWorks callers catch it)."""


class EntryValidationError(RegistryLoadError):
    """An entry's field has the wrong type or value."""


class InterpolationError(RegistryLoadError):
    """A ``${...}`` value in an entry does not resolve, or resolves in a loop."""


class OverrideError(RegistryError):
    """A per-invocation override is malformed or names nothing."""


# --- looking things up ----------------------------------------------------


class UnknownModelError(RegistryError, KeyError):
    """No entry has the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CapabilityError(RegistryError, RuntimeError):
    """The model lacks a capability the caller requires (also a ``RuntimeError``)."""


# --- writing ----------------------------------------------------------------


class RegistryWriteError(RegistryError):
    """A layer file could not be written or its lock could not be taken."""


# --- artifacts and integrity ----------------------------------------------


class ArtifactError(RegistryError):
    """A model's files cannot be found, or a path leaves the model's root."""


class ArtifactNameError(ArtifactError):
    """A model file's name holds a control character (a newline could forge
    lines of the aggregate hash)."""


class IntegrityError(RegistryError):
    """Content does not match what it must be: exit code 2."""

    exit_code = EXIT_INTEGRITY


class VersionLockViolation(IntegrityError, RuntimeError):
    """A locked entry's aggregate hash differs from the expected one (also a
    ``RuntimeError``)."""

    def __init__(
        self,
        message: str,
        *,
        name: str = "",
        expected: str = "",
        found: str = "",
        changed_files: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.name, self.expected, self.found = name, expected, found
        self.changed_files = list(changed_files or [])


class BlobDigestMismatch(IntegrityError):
    """A content-addressed blob's bytes do not hash to its name."""


# --- importing ----------------------------------------------------------------


class ImporterError(RegistryError):
    """A model source (Ollama, a model folder) cannot be read or is malformed,
    or an imported model's name is taken by a different model."""


# --- serving ----------------------------------------------------------------


class OrchestrationError(RegistryError):
    """A backend could not be started, reached or stopped."""


class ProbeInputError(RegistryError):
    """A vision probe cannot start: its image is missing, unreadable or not an
    image, or the word to expect is empty. Nothing was sent or recorded."""


# --- bugs ---------------------------------------------------------------------


class InternalError(RegistryError):
    """An exception the loader did not raise on purpose: a bug, exit code 3.
    Its cause (``__cause__``) is the original exception."""

    exit_code = EXIT_INTERNAL

    @classmethod
    def from_bug(cls, exc: BaseException) -> InternalError:
        text = " ".join(str(exc).split()) or "(no message)"
        error = cls(f"{type(exc).__name__}: {text} (a bug in imageworks-loader; please report it)")
        error.__cause__ = exc
        return error


def as_registry_error(exc: Exception) -> RegistryError:
    """``exc`` as the error a front door reports: itself when raised on
    purpose, else an ``InternalError`` (exit code 3)."""
    return exc if isinstance(exc, RegistryError) else InternalError.from_bug(exc)


def error_line(exc: RegistryError) -> str:
    """The one line a front door prints for ``exc`` after its prefix."""
    label = "internal error" if isinstance(exc, InternalError) else "error"
    return f"{label}: {exc}"
