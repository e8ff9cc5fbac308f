"""The messages AWS answers a policy it refuses with, and the error that carries them."""

from __future__ import annotations

from s4d.errors import S3Error

NOT_AN_OBJECT = "Policies must be valid JSON and the first byte must be '{'"
INVALID_JSON = "This policy contains invalid Json"
INVALID_SYNTAX = "Invalid policy syntax."
INVALID_VERSION = "The policy must contain a valid version string"
EMPTY_STATEMENT = "Could not parse the policy: Statement is empty!"
INVALID_ACTION = "Policy has invalid action"
INVALID_RESOURCE = "Policy has invalid resource"
INVALID_PRINCIPAL = "Invalid principal in policy"
INVALID_CONDITION_KEY = "Policy has an invalid condition key"
INVALID_IP = "Invalid IP address in Conditions"

#: The largest policy document AWS stores (20 KB).
MAX_POLICY_BYTES = 20 * 1024


def malformed(message: str) -> S3Error:
    """A ``MalformedPolicy`` error (400) with AWS's ``message``."""
    return S3Error("MalformedPolicy", message)


def missing_field(name: str) -> S3Error:
    """A required element of the policy or a statement is absent."""
    return malformed(f"Missing required field {name}")


def unknown_field(name: str) -> S3Error:
    """An element the policy language does not have."""
    return malformed(f"Unknown field {name}")


def invalid_effect(value: object) -> S3Error:
    """An Effect other than Allow or Deny."""
    return malformed(f"Invalid effect: {value}")


def invalid_condition_type(name: str) -> S3Error:
    """A condition operator the policy language does not have."""
    return malformed(f"Invalid Condition type : {name}")


def too_large() -> S3Error:
    """A document over :data:`MAX_POLICY_BYTES`."""
    return S3Error("PolicyTooLarge")
