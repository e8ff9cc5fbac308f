"""Fuzzing the policy language: no document crashes it, no policy grants more than it says.

Strategy, in two halves.

Parsing: arbitrary bytes, arbitrary JSON values, policy-shaped JSON whose
elements hold arbitrary JSON, and valid policies with bytes mutated must
either compile or raise :class:`~s4d.errors.S3Error` ``MalformedPolicy``
(``PolicyTooLarge`` over 20 KB); nothing else may escape.

Meaning: well-formed policies are generated from small alphabets (so patterns,
keys, users and actions collide often), with conditions; then requests are
generated and evaluated. Properties: evaluation never raises; a policy of
only Allow statements never answers DENY, one of only Deny never ALLOW; an
answer is always backed by a statement of that effect whose principal,
action and resource match the request by a naive reference matcher written
here (so a fast path of the compiled form that matches too much is caught);
and conditions only narrow: with them, a policy never answers what it would
not answer without them (for Allow-only policies: ALLOW with conditions
implies ALLOW without).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.auth.policy import Effect, MappingContext, PolicyRequest, compile_policy
from s4d.auth.policy.patterns import GlobSet, glob_can_start
from s4d.auth.principal import Principal
from s4d.errors import S3Error
from tests.fuzz._support import edits, fuzz, mutate

BUCKET = "ab"
USERS = [Principal.of("u1", "alice", "Writer"), Principal.of("u2", "bob", "Reader")]
ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
           "s3:GetObjectAcl", "s3:GetBucketPolicy", "s3:RenameObject", "S3:getobject"]  # fmt: skip
ACTION_PATTERNS = ["*", "s3:*", "s3:Get*", "s3:*Object", "s3:?utObject", "s3:List*",
                   "s3:GetObject", "S3:PUTOBJECT", "s3:DeleteObject", "s3:ListBucket",
                   "s3:*Acl", "s3:Get*Policy"]  # fmt: skip
PRINCIPALS: list[Any] = [
    "*", {"AWS": "*"}, {"AWS": "arn:aws:iam::1:user/alice"}, {"AWS": ["u2"]},
    {"AWS": "arn:aws:iam::u1:root"}, {"AWS": ["arn:aws:iam::9:user/x/bob", "u1"]},
    {"CanonicalUser": USERS[1].canonical_id}, {"Service": "s3.amazonaws.com"},
    {"AWS": "nobody"},
]  # fmt: skip
KEYS = ["s3:prefix", "aws:SourceIp", "s3:ExistingObjectTag/t", "aws:SecureTransport",
        "aws:username", "s3:max-keys", "aws:CurrentTime", "s3:x-amz-acl"]  # fmt: skip
OPERATORS = ["StringEquals", "StringNotEquals", "StringLike", "StringNotLike",
             "StringEqualsIgnoreCase", "ForAnyValue:StringLike", "ForAllValues:StringEquals",
             "StringLikeIfExists", "Null", "Bool", "NumericLessThan", "DateGreaterThan",
             "IpAddress", "NotIpAddress"]  # fmt: skip
VALUES = {"Null": ["true", "false"], "Bool": ["true", "false"], "NumericLessThan": ["5", "100"],
          "DateGreaterThan": ["2026-01-01T00:00:00Z", "1700000000"],
          "IpAddress": ["10.0.0.0/8", "2001:db8::/32"],
          "NotIpAddress": ["10.1.0.0/16", "::1"]}  # fmt: skip
TEXT_VALUES = ["a", "a*", "A", "?", "", "true", "10.1.2.3", "7", "public-read"]

key_text = st.text(alphabet="ab/*?.\n", max_size=6)
resource_patterns = st.one_of(
    st.sampled_from([BUCKET, "a*", "*", "?b", "*/*", "ab*", "ab/${aws:username}/*", "ab/${*}?"]),
    key_text.map(lambda key: f"{BUCKET}/{key}"),
).map(lambda pattern: "arn:aws:s3:::" + pattern)


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(OPERATORS))
        pool = VALUES.get(op.partition(":")[2] or op, TEXT_VALUES)
        values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2))
        block.setdefault(op, {})[draw(st.sampled_from(KEYS))] = values
    return block


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    chosen = effect or draw(st.sampled_from(["Allow", "Deny"]))
    statement: dict[str, Any] = {"Effect": chosen}
    principal = draw(st.sampled_from(PRINCIPALS))
    negate = chosen == "Deny" and principal != "*" and draw(st.booleans())
    statement["NotPrincipal" if negate else "Principal"] = principal
    actions = draw(st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3))
    statement["NotAction" if draw(st.booleans()) else "Action"] = actions
    resources = draw(st.lists(resource_patterns, min_size=1, max_size=3))
    statement["NotResource" if draw(st.booleans()) else "Resource"] = resources
    block = draw(conditions())
    if block:
        statement["Condition"] = block
    return statement


@st.composite
def requests(draw: st.DrawFn) -> PolicyRequest:
    context = {
        key: draw(st.lists(st.sampled_from(TEXT_VALUES + ["2026-06-01", "::1"]), max_size=2))
        for key in draw(st.lists(st.sampled_from(KEYS), unique=True))
    }
    return PolicyRequest(
        draw(st.sampled_from(ACTIONS)),
        BUCKET,
        draw(st.one_of(st.none(), key_text)),
        draw(st.sampled_from([None, *USERS])),
        MappingContext(context),
    )


def compiled(raw: list[dict[str, Any]]) -> Any:
    """The compiled policy, or ``None`` when the generator made an invalid one."""
    try:
        document = {"Version": "2012-10-17", "Statement": raw}
        return compile_policy(json.dumps(document).encode(), BUCKET)
    except S3Error as error:
        assert error.code == "MalformedPolicy", error
        return None


@lru_cache(maxsize=4096)
def reference_glob(pattern: str, text: str) -> bool:
    """Wildcard matching the slow, obvious way (no regex, no prefix tricks)."""
    if not pattern:
        return not text
    head = pattern[0]
    if head == "*":
        return reference_glob(pattern[1:], text) or (
            bool(text) and reference_glob(pattern, text[1:])
        )
    if not text:
        return False
    return (head == "?" or head == text[0]) and reference_glob(pattern[1:], text[1:])


def names(principal: Principal | None, raw: Any) -> bool:
    """Whether a Principal element names ``principal``, by reading the JSON directly."""
    if raw == "*":
        return True
    found = []
    for kind, items in raw.items():
        for item in items if isinstance(items, list) else [items]:
            found.append((kind, item))
    if ("AWS", "*") in found:
        return True
    if principal is None:
        return False
    for kind, item in found:
        if kind == "CanonicalUser" and item == principal.canonical_id:
            return True
        if kind != "AWS":
            continue
        if item in (principal.user_id, f"arn:aws:iam::{principal.user_id}:root"):
            return True
        if item.startswith("arn:aws:iam::") and item.endswith("/" + principal.username):
            return True
    return False


#: Literal ``*`` and ``?`` in the reference matcher's text and patterns (never wildcards).
LITERAL = str.maketrans({"*": "\x01", "?": "\x02"})


def expand(patterns: list[str], request: PolicyRequest) -> list[str]:
    """Resource patterns with ``${aws:username}`` and ``${*}`` filled in, exactly.

    A value filled in is literal, so its ``*`` and ``?`` become the characters
    :data:`LITERAL` maps the request's own ``*`` and ``?`` to. A pattern whose
    variable the request has no value for names nothing and is dropped.
    """
    names = request.context.get("aws:username")
    expanded = []
    for pattern in patterns:
        pattern = pattern.replace("${*}", "\x01")
        if "${aws:username}" in pattern:
            if not names:
                continue
            pattern = pattern.replace("${aws:username}", names[0].translate(LITERAL))
        expanded.append(pattern)
    return expanded


def backs(statement: dict[str, Any], request: PolicyRequest) -> bool:
    """Whether ``statement`` could justify an answer to ``request`` (conditions ignored)."""
    if "Principal" in statement:
        if not names(request.principal, statement["Principal"]):
            return False
    elif names(request.principal, statement["NotPrincipal"]):
        return False
    action = request.action.lower()
    field = "Action" if "Action" in statement else "NotAction"
    hit = any(reference_glob(p.lower(), action) for p in statement[field])
    if hit != (field == "Action"):
        return False
    key = "" if request.key is None else "/" + request.key.translate(LITERAL)
    resource = "arn:aws:s3:::" + BUCKET + key
    field = "Resource" if "Resource" in statement else "NotResource"
    hit = any(reference_glob(p, resource) for p in expand(statement[field], request))
    return hit == (field == "Resource")


class ParseFuzz(SynchronousTestCase):
    def only_malformed(self, document: bytes) -> None:
        try:
            compile_policy(document, BUCKET)
        except S3Error as error:
            expected = "PolicyTooLarge" if len(document) > 20480 else "MalformedPolicy"
            self.assertEqual(error.code, expected)
            self.assertEqual(error.status, 400)

    @fuzz(200)
    @given(st.binary(max_size=300))
    def test_arbitrary_bytes(self, data: bytes) -> None:
        self.only_malformed(data)
        self.only_malformed(b"{" + data)

    @fuzz(200)
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=30,
        )
    )
    def test_arbitrary_json(self, value: Any) -> None:
        self.only_malformed(json.dumps(value).encode())

    @fuzz(200)
    @given(st.data())
    def test_policy_shaped_json(self, data: st.DataObject) -> None:
        anything = st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
            | st.sampled_from(ACTION_PATTERNS + PRINCIPALS[:1] + OPERATORS + KEYS),
            lambda inner: st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(OPERATORS + KEYS + ["AWS"]), inner, max_size=3),
            max_leaves=12,
        )  # fmt: skip
        fields = ["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                  "Resource", "NotResource", "Condition", "Other"]  # fmt: skip
        optional = dict.fromkeys(fields, anything)
        statement = data.draw(st.fixed_dictionaries({}, optional=optional))
        versions = st.sampled_from(["2012-10-17", "2008-10-17", "x"])
        shapes = st.sampled_from([[statement], statement, [statement] * 2])
        top = {"Version": data.draw(versions), "Statement": data.draw(shapes)}
        self.only_malformed(json.dumps(top).encode())

    @fuzz(300)
    @given(st.lists(statements(), min_size=1, max_size=3), edits)
    def test_mutated_valid_policies(self, raw: list[dict[str, Any]], changes: Any) -> None:
        document = json.dumps({"Version": "2012-10-17", "Statement": raw}).encode()
        self.only_malformed(mutate(document, changes))


class MeaningFuzz(SynchronousTestCase):
    @fuzz(300)
    @given(st.lists(statements(), min_size=1, max_size=4), st.lists(requests(), max_size=8))
    def test_answers_are_backed_by_a_matching_statement(
        self, raw: list[dict[str, Any]], asked: list[PolicyRequest]
    ) -> None:
        policy = compiled(raw)
        if policy is None:
            return
        for request in asked:
            answer = policy.evaluate(request)
            if answer is None:
                continue
            backing = [st for st in raw if st["Effect"] == answer.value and backs(st, request)]
            self.assertTrue(backing, (answer, request, raw))

    @fuzz(300)
    @given(
        st.sampled_from(["Allow", "Deny"]),
        st.lists(st.data(), min_size=1, max_size=4),
        st.lists(requests(), min_size=1, max_size=8),
    )
    def test_one_effect_policies_answer_only_that_effect(
        self, effect: str, draws: list[st.DataObject], asked: list[PolicyRequest]
    ) -> None:
        raw = [data.draw(statements(effect)) for data in draws]
        policy = compiled(raw)
        if policy is None:
            return
        for request in asked:
            self.assertIn(policy.evaluate(request), (None, Effect(effect)))

    @fuzz(300)
    @given(st.lists(statements("Allow"), min_size=1, max_size=4), st.lists(requests(), max_size=8))
    def test_conditions_only_narrow(
        self, raw: list[dict[str, Any]], asked: list[PolicyRequest]
    ) -> None:
        policy = compiled(raw)
        bare = compiled([{k: v for k, v in st.items() if k != "Condition"} for st in raw])
        if policy is None or bare is None:
            return
        for request in asked:
            if policy.evaluate(request) is Effect.ALLOW:
                self.assertIs(bare.evaluate(request), Effect.ALLOW)


class VariableFuzz(SynchronousTestCase):
    @fuzz(300)
    @given(
        st.sampled_from(["ab/${aws:username}/*", "ab/${aws:username}", "ab/*${aws:username}?",
                         "a?/${*}${aws:username}*", "ab/${aws:username}${?}"]),
        st.one_of(st.none(), st.text(alphabet="ab*?/", max_size=3)),
        key_text,
    )  # fmt: skip
    def test_filled_in_values_are_literal(
        self, pattern: str, username: str | None, key: str
    ) -> None:
        """A resource with a variable matches exactly what the reference says."""
        resource = "arn:aws:s3:::" + pattern
        policy = compiled(
            [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": resource}]
        )
        context = MappingContext({} if username is None else {"aws:username": [username]})
        request = PolicyRequest("s3:GetObject", BUCKET, key, None, context)
        expected = any(
            reference_glob(p, "arn:aws:s3:::" + BUCKET + "/" + key.translate(LITERAL))
            for p in expand(["arn:aws:s3:::" + pattern.replace("${?}", "\x02")], request)
        )
        self.assertEqual(policy.evaluate(request), Effect.ALLOW if expected else None)


class PatternFuzz(SynchronousTestCase):
    @fuzz(300)
    @given(st.lists(st.text(alphabet="ab/*?", max_size=6), min_size=1, max_size=4),
           st.text(alphabet="ab/\n", max_size=8))  # fmt: skip
    def test_glob_set_matches_the_reference(self, patterns: list[str], text: str) -> None:
        expected = any(reference_glob(pattern, text) for pattern in patterns)
        self.assertEqual(GlobSet.of(patterns).match(text), expected)

    @fuzz(300)
    @given(st.text(alphabet="ab/*?", max_size=6), st.text(alphabet="ab/", max_size=5),
           st.text(alphabet="ab/", max_size=5))  # fmt: skip
    def test_can_start_is_never_wrong_about_a_match(
        self, pattern: str, prefix: str, rest: str
    ) -> None:
        if reference_glob(pattern, prefix + rest):
            self.assertTrue(glob_can_start(pattern, prefix))
        if glob_can_start(pattern, prefix):
            # a witness: the prefix, then the pattern's tail with wildcards filled in
            self.assertTrue(
                any(
                    reference_glob(
                        pattern, prefix + pattern[cut:].replace("*", "").replace("?", "a")
                    )
                    for cut in range(len(pattern) + 1)
                )
            )
