"""The Serve applications the KubeRay walkthroughs deploy, with just their behaviour.

Sources (read from the real code):
- ray-project/kuberay ray-operator/config/samples/ray-serve/single_deployment_dag.py:
  BaseService (ray_actor_options num_cpus 0.1) returns "hello world"; DagNode = BaseService.bind().
- ray-project/test_dag fruit.py at 78b4a5da: FruitMarket (num_replicas=2, ingress,
  request body [fruit, amount]) -> stand.check_price(amount) = price * amount, -1 for an
  unknown fruit; MangoStand user_config price 3 (DEFAULT_PRICE 1), OrangeStand 2 (0.5),
  PearStand 4 (0.75); reconfigure() reads config.get("price", DEFAULT_PRICE).
- ray-project/test_dag conditional_dag.py at 78b4a5da: Router (num_cpus 0.1, ingress,
  body [op, input]) -> "<amount> pizzas please!"; Multiplier user_config factor 3
  (reconfigure default -1) and Adder increment 2 (default -1), both num_cpus 0.1 with an
  actor runtime_env env_vars override_factor/override_increment "-2" that wins when set.
  Serve replaces a deployment's ray_actor_options with the config's, so the env override
  only applies when the config leaves ray_actor_options unset.
"""

import os

# Serve's default actor options when the code sets none: num_cpus 1
# (serve/_private/config.py ReplicaConfig default ray_actor_options).
DEFAULT_ACTOR_OPTIONS = {"num_cpus": 1}


def _dep(name, ingress=False, num_replicas=1, user_config=None, actor_options=None):
    return {"name": name, "ingress": ingress, "num_replicas": num_replicas, "user_config": user_config,
            "ray_actor_options": actor_options if actor_options is not None else dict(DEFAULT_ACTOR_OPTIONS)}


APPS = {
    "single_deployment_dag:DagNode": {
        "module": "single_deployment_dag",
        "deployments": [_dep("BaseService", True, 1, None, {"num_cpus": 0.1})],
    },
    "fruit.deployment_graph": {
        "module": "fruit",
        "deployments": [
            _dep("FruitMarket", True, 2),
            _dep("MangoStand", False, 1, {"price": 3}),
            _dep("OrangeStand", False, 1, {"price": 2}),
            _dep("PearStand", False, 1, {"price": 4}),
        ],
    },
    "conditional_dag.serve_dag": {
        "module": "conditional_dag",
        "deployments": [
            _dep("Router", True, 1, None, {"num_cpus": 0.1}),
            _dep("Multiplier", False, 1, {"factor": 3},
                 {"num_cpus": 0.1, "runtime_env": {"env_vars": {"override_factor": "-2"}}}),
            _dep("Adder", False, 1, {"increment": 2},
                 {"num_cpus": 0.1, "runtime_env": {"env_vars": {"override_increment": "-2"}}}),
        ],
    },
}

FRUIT_DEFAULT_PRICE = {"MangoStand": 1, "OrangeStand": 0.5, "PearStand": 0.75}
FRUIT_STANDS = {"MANGO": "MangoStand", "ORANGE": "OrangeStand", "PEAR": "PearStand"}


def image_lacks():
    """Modules this node's "image" does not have: RW_SIM_IMAGE_LACKS, comma-separated
    (a test knob set in a pod template's env). It stands for the real case of a new
    image without a package the application imports: Serve's build task raises
    ModuleNotFoundError and the application is DEPLOY_FAILED on that cluster only."""
    return {m.strip() for m in os.environ.get("RW_SIM_IMAGE_LACKS", "").split(",") if m.strip()}


def resolve(import_path):
    """App definition for an import path, or None (-> ModuleNotFoundError).

    Matching is on the module path's last components, as the real import works
    relative to the runtime_env working_dir (e.g.
    "ray-operator.config.samples.ray-serve.single_deployment_dag:DagNode").
    """
    norm = import_path.replace(":", ".")
    if missing_module(import_path) in image_lacks():
        return None
    for key, app in APPS.items():
        k = key.replace(":", ".")
        if norm == k or norm.endswith("." + k):
            return app
    return None


def missing_module(import_path):
    mod = import_path.split(":")[0]
    if ":" not in import_path:
        mod = mod.rsplit(".", 1)[0]
    return mod.split(".")[0]


class AppError(Exception):
    """A user-code exception inside a replica (-> 500 from the proxy)."""


def _num(x):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise AppError("TypeError: unsupported operand type(s)")
    return x


def call(module, deployment, method, args, user_config, env, handle):
    """Run one replica method. handle(dep, method, args) calls another deployment.

    Returns a Python value: str goes back as text/plain, anything else as JSON
    (Serve's http_util: str -> text/plain; charset=utf-8, else JSONResponse).
    """
    if module == "single_deployment_dag":
        return "hello world"
    if module == "fruit":
        if deployment == "FruitMarket":
            fruit, amount = _pair(args)
            stand = FRUIT_STANDS.get(fruit)
            if stand is None:
                return -1
            return handle(stand, "check_price", [amount])
        price = (user_config or {}).get("price", FRUIT_DEFAULT_PRICE[deployment]) \
            if user_config is not None else FRUIT_DEFAULT_PRICE[deployment]
        return _num(price) * _num(args[0])
    if module == "conditional_dag":
        if deployment == "Router":
            op, value = _pair(args)
            if op == "ADD":
                amount = handle("Adder", "add", [value])
            elif op == "MUL":
                amount = handle("Multiplier", "multiply", [value])
            else:
                # Operation(op) raises ValueError for anything else.
                raise AppError("ValueError: '%s' is not a valid Operation" % op)
            return "%s pizzas please!" % _fmt(amount)
        if deployment == "Multiplier":
            if env.get("override_factor") is not None:
                return _num(args[0]) * int(env["override_factor"])
            factor = (user_config or {}).get("factor", -1) if user_config is not None else 1
            return _num(args[0]) * factor
        if deployment == "Adder":
            if env.get("override_increment") is not None:
                return _num(args[0]) + int(env["override_increment"])
            inc = (user_config or {}).get("increment", -1) if user_config is not None else 1
            return _num(args[0]) + inc
    raise AppError("AttributeError: no method %s on %s" % (method, deployment))


def _pair(args):
    if not isinstance(args, list) or len(args) != 2:
        raise AppError("ValueError: not enough values to unpack (expected 2)")
    return args[0], args[1]


def _fmt(v):
    # f"{amount}" of a Python number.
    if isinstance(v, float):
        return repr(v)
    return str(v)


def render(value):
    """(content_type, body) of an ingress return value."""
    if isinstance(value, str):
        return "text/plain; charset=utf-8", value.encode("utf-8")
    if isinstance(value, bytes):
        return "text/plain; charset=utf-8", value
    from .common import dumps_min
    return "application/json", dumps_min(value).encode("utf-8")
