"""Validation of PUT /api/serve/applications/ bodies (ServeDeploySchema).

Errors are rendered as pydantic v1's repr(ValidationError), which is what the
dashboard returns with status 400 (ray-apis.md 3.2): e.g.
ValidationError(model='ServeDeploySchema', errors=[{'loc': ('applications',),
'msg': 'Found multiple configs for application "app1". Please remove all
duplicates.', 'type': 'value_error'}]). The messages are those of the
validators in python/ray/serve/schema.py.
"""


class SchemaError(Exception):
    def __init__(self, errors, model="ServeDeploySchema"):
        super().__init__(render(model, errors))
        self.errors = errors
        self.model = model


def render(model, errors):
    parts = []
    for loc, msg, typ in errors:
        parts.append("{'loc': %r, 'msg': %r, 'type': %r}" % (tuple(loc), msg, typ))
    return "ValidationError(model=%r, errors=[%s])" % (model, ", ".join(parts))


def _type_err(loc, want):
    msgs = {"dict": ("value is not a valid dict", "type_error.dict"),
            "list": ("value is not a valid list", "type_error.list"),
            "str": ("str type expected", "type_error.str"),
            "int": ("value is not a valid integer", "type_error.integer"),
            "float": ("value is not a valid float", "type_error.float")}
    m, t = msgs[want]
    return (loc, m, t)


def validate(cfg):
    """Raise SchemaError unless cfg is a valid ServeDeploySchema dict."""
    errors = []
    if not isinstance(cfg, dict):
        raise SchemaError([(("__root__",), "ServeDeploySchema expected dict not %s" % type(cfg).__name__,
                            "type_error")])
    pl = cfg.get("proxy_location")
    if pl is not None and pl not in ("EveryNode", "HeadOnly", "Disabled", "NoServer"):
        errors.append((("proxy_location",), "value is not a valid enumeration member; permitted: "
                       "'Disabled', 'HeadOnly', 'EveryNode'", "type_error.enum"))
    ho = cfg.get("http_options")
    if ho is not None and not isinstance(ho, dict):
        errors.append(_type_err(("http_options",), "dict"))
    elif isinstance(ho, dict) and "port" in ho and not isinstance(ho["port"], int):
        errors.append(_type_err(("http_options", "port"), "int"))
    tc = cfg.get("target_capacity")
    if tc is not None and (not isinstance(tc, (int, float)) or not 0 <= tc <= 100):
        errors.append((("target_capacity",), "ensure this value is less than or equal to 100",
                       "value_error.number.not_le"))
    apps = cfg.get("applications", [])
    if not isinstance(apps, list):
        errors.append(_type_err(("applications",), "list"))
        apps = []
    for i, app in enumerate(apps):
        errors.extend(_validate_app(i, app))
    if not errors:
        names = [a.get("name", "default") for a in apps]
        dup = sorted({'"%s"' % n for n in names if names.count(n) > 1})
        if dup:
            what = ("application " if len(dup) == 1 else "applications ") + ", ".join(dup)
            errors.append((("applications",), "Found multiple configs for %s. Please remove all duplicates." % what,
                           "value_error"))
        routes = [a.get("route_prefix", "/") for a in apps if a.get("route_prefix", "/") is not None]
        dup = sorted({'"%s"' % r for r in routes if routes.count(r) > 1})
        if dup:
            what = ("route prefix " if len(dup) == 1 else "route prefixes ") + ", ".join(dup)
            errors.append((("applications",), "Found duplicate applications for %s. Please ensure each "
                           "application's route_prefix is unique." % what, "value_error"))
        for a in apps:
            for field in ("host", "port"):
                if field in a:
                    errors.append((("__root__",), "%s `%s` is set in the '%s' application. This is not "
                                   "supported. Please set the %s in the `http_options` field of the config "
                                   "instead." % (field.capitalize(), a[field], a.get("name", "default"), field),
                                   "value_error"))
    if errors:
        raise SchemaError(errors)


def _validate_app(i, app):
    loc = ("applications", i)
    if not isinstance(app, dict):
        return [_type_err(loc, "dict")]
    errs = []
    name = app.get("name", "default")
    if not isinstance(name, str):
        errs.append(_type_err(loc + ("name",), "str"))
    elif name == "":
        errs.append((loc + ("name",), "Application name must not be empty.", "value_error"))
    if "import_path" not in app:
        errs.append((loc + ("import_path",), "field required", "value_error.missing"))
    else:
        ip = app["import_path"]
        if not isinstance(ip, str):
            errs.append(_type_err(loc + ("import_path",), "str"))
        elif ip.count(":") > 1:
            errs.append((loc + ("import_path",), 'Got invalid import path "%s". An import path may have at '
                         'most one colon.' % ip, "value_error"))
        elif ":" not in ip and "." not in ip:
            errs.append((loc + ("import_path",), 'Got invalid import path "%s". An import path must contain '
                         'a "." or ":" separating the module and the attribute.' % ip, "value_error"))
    rp = app.get("route_prefix", "/")
    if rp is not None:
        if not isinstance(rp, str):
            errs.append(_type_err(loc + ("route_prefix",), "str"))
        elif not rp.startswith("/"):
            errs.append((loc + ("route_prefix",), 'Got "%s" for route_prefix. Route prefix must start with '
                         '"/".' % rp, "value_error"))
        elif len(rp) > 1 and rp.endswith("/"):
            errs.append((loc + ("route_prefix",), 'Got "%s" for route_prefix. Route prefix cannot end with '
                         '"/" unless it\'s the root.' % rp, "value_error"))
        elif "{" in rp or "}" in rp:
            errs.append((loc + ("route_prefix",), 'Got "%s" for route_prefix. Route prefix cannot contain '
                         'wildcards.' % rp, "value_error"))
    for field in ("runtime_env", "args"):
        if field in app and app[field] is not None and not isinstance(app[field], dict):
            errs.append(_type_err(loc + (field,), "dict"))
    deps = app.get("deployments", [])
    if not isinstance(deps, list):
        return errs + [_type_err(loc + ("deployments",), "list")]
    for j, d in enumerate(deps):
        dl = loc + ("deployments", j)
        if not isinstance(d, dict):
            errs.append(_type_err(dl, "dict"))
            continue
        if "name" not in d:
            errs.append((dl + ("name",), "field required", "value_error.missing"))
        nr = d.get("num_replicas")
        if nr is not None and nr != "auto":
            if isinstance(nr, bool) or not isinstance(nr, int):
                errs.append(_type_err(dl + ("num_replicas",), "int"))
            elif nr < 0:
                errs.append((dl + ("num_replicas",), "ensure this value is greater than or equal to 0",
                             "value_error.number.not_ge"))
        if nr not in (None, "auto") and d.get("autoscaling_config") is not None:
            errs.append((dl + ("__root__",), "Manually setting num_replicas is not allowed when "
                         "autoscaling_config is provided.", "value_error"))
        mrpn = d.get("max_replicas_per_node")
        if mrpn is not None and (isinstance(mrpn, bool) or not isinstance(mrpn, int) or not 1 <= mrpn <= 100):
            errs.append((dl + ("max_replicas_per_node",), "ensure this value is greater than or equal to 1",
                         "value_error.number.not_ge"))
        rao = d.get("ray_actor_options")
        if rao is not None:
            if not isinstance(rao, dict):
                errs.append(_type_err(dl + ("ray_actor_options",), "dict"))
            elif "num_cpus" in rao and (isinstance(rao["num_cpus"], bool)
                                        or not isinstance(rao["num_cpus"], (int, float)) or rao["num_cpus"] < 0):
                errs.append((dl + ("ray_actor_options", "num_cpus"), "ensure this value is greater than or "
                             "equal to 0", "value_error.number.not_ge"))
    return errs
