"""metav1.Status errors and small helpers shared by the API server simulator modules.

Every error the simulator returns is a metav1.Status built the way
staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go builds it (NewNotFound,
NewAlreadyExists, NewConflict, NewInvalid, NewBadRequest, NewGone, NewResourceExpired,
NewTooManyRequests, NewInternalError, NewUnauthorized, NewForbidden, NewMethodNotSupported,
NewGenericServerResponse), so that clients see the same kind/apiVersion/status/message/
reason/details/code fields as from a real kube-apiserver.
"""

import calendar
import json
import random
import re
import time


class ApiError(Exception):
    """An error answered as a metav1.Status body with an HTTP status code."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        # Field order and content follow metav1.Status as encoded by the real server.
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message}
        if self.reason:
            st["reason"] = self.reason
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st


def qualified(resource, group):
    """GroupResource.String(): "pods", "deployments.apps"."""
    return resource + "." + group if group else resource


def _details(name, group, kind):
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    return d


def not_found(resource, group, name):
    # errors.NewNotFound: details.kind carries the *resource* (plural) name.
    return ApiError(404, "NotFound", '%s "%s" not found' % (qualified(resource, group), name),
                    _details(name, group, resource))


def already_exists(resource, group, name):
    # errors.NewAlreadyExists.
    return ApiError(409, "AlreadyExists",
                    '%s "%s" already exists' % (qualified(resource, group), name),
                    _details(name, group, resource))


def conflict(resource, group, name, why):
    # errors.NewConflict: "Operation cannot be fulfilled on <gr> "<name>": <why>".
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                    % (qualified(resource, group), name, why), _details(name, group, resource))


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind, group, name, causes):
    """errors.NewInvalid: 422 with details.kind = Kind and one cause per field error.

    causes: list of (type, field, message-after-field) where type is a metav1.CauseType
    such as FieldValueInvalid, FieldValueRequired, FieldValueForbidden, FieldValueNotSupported,
    FieldValueTooLong, FieldValueDuplicate (field.ErrorType.String() forms).
    """
    msgs = []
    out = []
    for ctype, fld, msg in causes:
        full = "%s: %s" % (fld, msg) if fld else msg
        msgs.append(full)
        out.append({"reason": ctype, "message": msg, "field": fld})
    qkind = kind + "." + group if group else kind
    if len(msgs) == 1:
        text = '%s "%s" is invalid: %s' % (qkind, name, msgs[0])
    else:
        text = '%s "%s" is invalid: [%s]' % (qkind, name, ", ".join(msgs))
    d = _details(name, group, kind)
    d["causes"] = out
    return ApiError(422, "Invalid", text, d)


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def gone_expired(message):
    # errors.NewResourceExpired: 410 with reason Expired (watch cache "too old resource version").
    return ApiError(410, "Expired", message)


def too_many_requests(retry_after):
    # errors.NewTooManyRequests.
    return ApiError(429, "TooManyRequests",
                    "Too many requests, please try again later.",
                    {"retryAfterSeconds": retry_after},
                    {"Retry-After": str(retry_after)})


def internal_error(msg):
    # errors.NewInternalError.
    return ApiError(500, "InternalError", "Internal error occurred: %s" % msg,
                    {"causes": [{"message": msg}]})


def unauthorized():
    # The authentication filter answers 401 with this exact body
    # (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go).
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(resource, group, name, message):
    d = _details(name, group, resource)
    if name:
        text = '%s "%s" is forbidden: %s' % (qualified(resource, group), name, message)
    else:
        text = "%s is forbidden: %s" % (qualified(resource, group), message)
    return ApiError(403, "Forbidden", text, d)


def method_not_supported(resource, group, verb):
    return ApiError(405, "MethodNotAllowed", "%s is not supported on resources of kind %r"
                    % (verb, qualified(resource, group)), _details("", group, resource))


def unsupported_media(accepted):
    # errors.NewUnsupportedMediaType (patch handler when the Content-Type is not accepted).
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: " + ", ".join(accepted))


def generic_422(message):
    # errors.NewGenericServerResponse(422, ...): used by the patch handler for JSON-patch errors.
    return ApiError(422, "Invalid", "the server rejected our request due to an error in our request",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": message}]})


# ---- time -------------------------------------------------------------------------------------


def rfc3339(t=None):
    """metav1.Time: RFC 3339, seconds precision, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def parse_time(s):
    if not isinstance(s, str) or not s:
        return None
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$", s)
    if not m:
        return None
    t = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)) + (0, 0, 0))
    if m.group(7):
        t += float(m.group(7))
    tz = m.group(8)
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration (the AGE column)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return "%ds" % s
    minutes = s // 60
    if minutes < 10:
        r = s % 60
        return "%dm" % minutes if r == 0 else "%dm%ds" % (minutes, r)
    if minutes < 180:
        return "%dm" % minutes
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return "%dh" % hours if m == 0 else "%dh%dm" % (hours, m)
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        h = hours % 24
        return "%dd" % (hours // 24) if h == 0 else "%dd%dh" % (hours // 24, h)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        y = hours // 24 // 365
        return "%dy" % y if dy == 0 else "%dy%dd" % (y, dy)
    return "%dy" % (hours // 24 // 365)


def since(ts):
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    return human_duration(time.time() - t)


# ---- names --------------------------------------------------------------------------------------

# k8s.io/apimachinery/pkg/util/rand/rand.go: "We omit vowels from the set of available characters
# to reduce the chances of "bad words" being formed." and 0,1,3 (look like o,l,e).
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(base):
    """staging/src/k8s.io/apiserver/pkg/storage/names/generate.go: SimpleNameGenerator.

    maxNameLength 63, randomLength 5, so the base is cut to 58 characters.
    """
    if len(base) > 58:
        base = base[:58]
    return base + "".join(random.choice(_ALPHANUMS) for _ in range(5))


DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

# Messages from staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go.
MSG_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
MSG_1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',"
            "  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def name_errors(name, rule):
    """Errors for metadata.name under rule 'subdomain', 'label', 'dns1035' or 'path'."""
    errs = []
    if rule == "path":
        # path.IsValidPathSegmentName (RBAC objects).
        if name in (".", ".."):
            errs.append('may not be %r' % name)
        for bad in ("/", "%"):
            if bad in name:
                errs.append("may not contain '%s'" % bad)
        return errs
    if rule == "subdomain":
        if len(name) > 253:
            errs.append("must be no more than 253 characters")
        if not DNS1123_SUBDOMAIN.match(name):
            errs.append(MSG_SUBDOMAIN)
    elif rule == "label":
        if len(name) > 63:
            errs.append("must be no more than 63 characters")
        if not DNS1123_LABEL.match(name):
            errs.append(MSG_LABEL)
    elif rule == "dns1035":
        if len(name) > 63:
            errs.append("must be no more than 63 characters")
        if not DNS1035_LABEL.match(name):
            errs.append(MSG_1035)
    return errs


_QNAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def qualified_name_errors(key):
    """validation.IsQualifiedName (label and annotation keys)."""
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        if len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix):
            return ["prefix part " + MSG_SUBDOMAIN]
    else:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
                "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',"
                "  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix"
                " and '/' (e.g. 'example.com/MyName')"]
    if not name:
        return ["name part must be non-empty"]
    if len(name) > 63:
        return ["name part must be no more than 63 characters"]
    if not _QNAME.match(name):
        return ["name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]
    return []


def label_value_errors(v):
    errs = []
    if len(v) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(v):
        errs.append("a valid label must be an empty string or consist of alphanumeric characters,"
                    " '-', '_' or '.', and must start and end with an alphanumeric character (e.g."
                    " 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
    return errs


def clone(o):
    """Deep copy of JSON data (faster than copy.deepcopy for dict/list trees)."""
    if isinstance(o, dict):
        return {k: clone(v) for k, v in o.items()}
    if isinstance(o, list):
        return [clone(v) for v in o]
    return o


def dumps(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)
