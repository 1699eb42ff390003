"""CEL rules of the CRD for what the spec model checks in Python (api/spec.py, api/kube_rules.py).

Each rule mirrors a pydantic validator, so `kubectl apply` refuses what the CLI refuses, with a
message that says what a valid value looks like (a pattern's error would only show a regex).
Values that reach the converter Job (resources, tolerations, node selector, ServiceAccount) are
checked by the rules the apiserver applies to that Job, with the Kubernetes CEL libraries of
1.31+ (format.*, quantity). One exception, on purpose: in a cluster every URI must be gs://;
local paths are for `tflite-operator convert` on a workstation.

RULES maps a path in the spec schema ("job.tolerations[]" is an item of the list) to the
x-kubernetes-validations added there.
"""

from __future__ import annotations

from typing import Any

from tflite_operator.api import kube_rules as kr
from tflite_operator.api.spec_fields import MAX_INPUT_NAME

# Every URI field of the spec: gs:// in a cluster.
URI_FIELDS = (
    "source.uri",
    "output.uri",
    "variants[].representativeDataset.uri",
    "validation.datasetUri",
)

_BUCKET = "self.substring(5).split('/')[0]"
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
GS_URI_RULES: list[dict[str, Any]] = [
    {
        "rule": "self.startsWith('gs://')",
        "message": "must be a gs://BUCKET/PATH URI: in a cluster the converter reads and writes "
        "Cloud Storage (local paths work only with `tflite-operator convert`)",
    },
    {
        # storage/uris.py's bucket_name_problem, rule by rule.
        "rule": "!self.startsWith('gs://') || ("
        "self.matches('^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/|$)')"
        " && !self.matches('^gs://[^/]*[^/.]{64}')"
        " && !self.matches('^gs://[^/]*[.][.]')"
        f" && !self.matches('^gs://({_OCTET}[.]){{3}}{_OCTET}(/|$)')"
        " && !self.startsWith('gs://goog')"
        " && !self.matches('^gs://[^/]*(google|g00gle)'))",
        "messageExpression": "'bucket name \\'' + " + _BUCKET + " + '\\' is not a valid Cloud "
        "Storage bucket name: use 3-63 lowercase letters, digits, \\'-\\', \\'_\\' and \\'.\\' "
        "(up to 222 with dots, at most 63 between dots), starting and ending with a letter or "
        "digit, not an IP address, not starting with \\'goog\\' or containing \\'google\\''",
    },
    {
        # storage/uris.py's relative_name_problem for the key (one trailing '/' is allowed).
        "rule": "!self.startsWith('gs://') || ("
        "self.matches('^gs://[^/]*(/([^/]+(/[^/]+)*)?/?)?$')"
        " && !self.matches('^gs://[^/]*/([^/]*/)*[.][.]?(/|$)')"
        " && !self.matches('[\\\\x00-\\\\x1f\\\\x7f]'))",
        "message": "the object path after the bucket must not contain '.' or '..' segments, "
        "empty segments ('//') or control characters: write it as gs://BUCKET/folder/name",
    },
]


def _first_bad(predicate: str) -> str:
    """A messageExpression fragment: the first map key for which `predicate` (on k) is false."""
    return f"self.filter(k, !({predicate}))[0]"


_LABEL_KEY_OK = "!format.qualifiedName().validate(k).hasValue()"
_EXTENDED = (
    "(k.contains('/') && !k.contains('kubernetes.io/') && !k.startsWith('requests.') && "
    f"{_LABEL_KEY_OK})"
)
_RESOURCE_NAME_OK = f"k in {list(kr.STANDARD_RESOURCES)!r} || {_EXTENDED}"
_QUANTITY_OK = "isQuantity(self[k]) && sign(quantity(self[k])) >= 0"
_WHOLE_OK = "!k.contains('/') || !isQuantity(self[k]) || quantity(self[k]).isInteger()"


def _map_rule(predicate: str, what: str) -> dict[str, Any]:
    return {
        "rule": f"self.all(k, {predicate})",
        "messageExpression": f"'{_esc(what)}'.replace('KEY', {_first_bad(predicate)})",
    }


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


RESOURCE_LIST_RULES = [
    _map_rule(_RESOURCE_NAME_OK, f"KEY is not a container resource; use {kr.RESOURCE_NAME_HELP}"),
    _map_rule(_QUANTITY_OK, f"KEY: the value is not {kr.QUANTITY_HELP}"),
    _map_rule(_WHOLE_OK, "KEY: must be a whole number (extended resources are counted)"),
]


def _both(k: str) -> str:
    return f"isQuantity(self.requests[{k}]) && isQuantity(self.limits[{k}])"


RESOURCES_RULES = [
    {
        "rule": "!has(self.requests) || !has(self.limits) || self.requests.all(k, "
        "k.contains('/') || !(k in self.limits) || !(" + _both("k") + ") || "
        "quantity(self.requests[k]).compareTo(quantity(self.limits[k])) <= 0)",
        "message": "a request is more than its limit: lower spec.job.resources.requests or "
        "raise spec.job.resources.limits",
    },
    {
        "rule": "!has(self.requests) || self.requests.all(k, !k.contains('/') || "
        "!isQuantity(self.requests[k]) || (has(self.limits) && k in self.limits && "
        "isQuantity(self.limits[k]) && "
        "quantity(self.requests[k]).compareTo(quantity(self.limits[k])) == 0))",
        "message": "extended resources (<domain>/<name>) cannot be overcommitted: set "
        "spec.job.resources.limits to the same value as requests for them",
    },
]

TOLERATION_RULES = [
    {
        "rule": "(has(self.key) && self.key != '') || (has(self.operator) && "
        "self.operator == 'Exists')",
        "message": "a toleration without key must have operator: Exists (it then tolerates "
        "every taint); set key, or operator: Exists",
        "fieldPath": ".operator",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        "message": "tolerationSeconds only applies to effect: NoExecute; set that effect or "
        "remove tolerationSeconds",
        "fieldPath": ".effect",
        "reason": "FieldValueInvalid",
    },
    {
        "rule": "!(has(self.operator) && self.operator == 'Exists') || !has(self.value) || "
        "self.value == ''",
        "message": "a toleration with operator: Exists matches any value; remove value or use "
        "operator: Equal",
        "fieldPath": ".value",
        "reason": "FieldValueInvalid",
    },
]

# api/spec.py Source.input_shapes: the keys' length (a structural schema has no propertyNames;
# the dims' bounds are plain minimum/maximum on the items).
INPUT_SHAPES_RULES = [
    _map_rule(
        f"size(k) >= 1 && size(k) <= {MAX_INPUT_NAME}",
        f"input name KEY must be 1 to {MAX_INPUT_NAME} characters: the name of an input "
        f"of a selected signature (tflite-operator inspect lists them)",
    )
]

RULES: dict[str, list[dict[str, Any]]] = {
    **{path: GS_URI_RULES for path in URI_FIELDS},
    "source.inputShapes": INPUT_SHAPES_RULES,
    "variants[].name": [
        {
            "rule": "!format.dns1123Label().validate(self).hasValue()",
            "message": f"must be {kr.DNS_LABEL_HELP} (it names <name>.tflite)",
        }
    ],
    "job.serviceAccountName": [
        {
            "rule": "!format.dns1123Subdomain().validate(self).hasValue()",
            "message": f"must be {kr.SUBDOMAIN_HELP}",
        }
    ],
    "job.nodeSelector": [
        _map_rule(_LABEL_KEY_OK, f"key KEY must be {kr.LABEL_KEY_HELP}"),
        _map_rule(
            "!format.labelValue().validate(self[k]).hasValue()",
            f"the value of KEY must be {kr.LABEL_VALUE_HELP}",
        ),
    ],
    "job.resources": RESOURCES_RULES,
    "job.resources.requests": RESOURCE_LIST_RULES,
    "job.resources.limits": RESOURCE_LIST_RULES,
    "job.tolerations[]": TOLERATION_RULES,
    "job.tolerations[].key": [
        {
            "rule": "self == '' || !format.qualifiedName().validate(self).hasValue()",
            "message": f"must be {kr.LABEL_KEY_HELP}",
        }
    ],
    "job.tolerations[].value": [
        {
            "rule": "self == '' || !format.labelValue().validate(self).hasValue()",
            "message": f"must be {kr.LABEL_VALUE_HELP}",
        }
    ],
}


def at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The node of `schema` at "a.b[].c" (KeyError when the model has no such field)."""
    node = schema
    for part in path.split("."):
        name, items = part.removesuffix("[]"), part.endswith("[]")
        node = node["properties"][name]
        if items:
            node = node["items"]
    return node


def add_rules(spec: dict[str, Any]) -> None:
    for path, rules in RULES.items():
        node = at(spec, path)
        node.setdefault("x-kubernetes-validations", []).extend(rules)
