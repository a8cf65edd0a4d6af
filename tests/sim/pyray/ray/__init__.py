"""A stand-in for the `ray` Python package, for driver scripts run by the simulator.

Ray cannot be installed here. Job entrypoints (KubeRay's samples: `python
/home/ray/samples/sample_code.py`) import `ray`, so this package gives them the
core API with Ray's names and call shapes, executed locally and synchronously in
the driver's own process (docs/ray-simulator.md, "Python `ray` stand-in"):

- ray.init() connects to the simulated GCS when an address is given (argument,
  "auto", or RAY_ADDRESS, as python/ray/_private/worker.py resolves it) and fails
  like Ray when it cannot; without one it runs stand-alone.
- @ray.remote functions and actor classes run in this process when .remote() is
  called; the result (or the exception, wrapped as RayTaskError) is held by an
  ObjectRef until ray.get. Actor methods run one at a time, in call order, as an
  actor's do.
- ray.put / get / wait / kill / get_actor / shutdown / is_initialized /
  cluster_resources / available_resources / nodes / get_runtime_context.

Stand-alone, tasks run at once and resource options are ignored. Connected to
a simulated cluster, a task first needs a lease on a node with room for its
resources (num_cpus, num_gpus, memory, resources; one CPU by default): it waits,
and is the demand the autoscaler stand-in reads, until one is granted, then runs
here in a thread of the driver (see "leases" below). Nothing is serialized or
really placed on another node. ray.autoscaler.sdk.request_resources is there too.
"""

import asyncio
import functools
import inspect
import os
import sys
import threading
import time
import traceback

from . import exceptions
from .exceptions import (ActorDiedError, GetTimeoutError, NodeDiedError, RayActorError, RayError,  # noqa: F401
                         RayTaskError, RuntimeEnvSetupError, _task_error)

__version__ = os.environ.get("RW_SIM_RAY_VERSION", "2.52.0")
__commit__ = "{{RAY_COMMIT_SHA}}"

_SIM_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Per-node constants reported where the simulated GCS has no figure (memory is
# not modelled): 8 GiB of memory and a 2 GiB object store per node.
NODE_MEMORY = 8 * 1024 ** 3
NODE_OBJECT_STORE_MEMORY = 2 * 1024 ** 3

_lock = threading.RLock()
_exec_lock = threading.RLock()
_state = {"initialized": False, "address": None, "namespace": None, "gcs": None, "num_cpus": None,
          "runtime_env": None}
_named = {}
_counter = [0]


def _log(msg):
    # Ray's driver logs "<date> INFO worker.py:NNNN -- <msg>" on stderr.
    ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    sys.stderr.write("%s,%03d\tINFO worker.py:1 -- %s\n" % (ts, int((time.time() % 1) * 1000), msg))
    sys.stderr.flush()


def _gcs_client(address):
    if _SIM_DIR not in sys.path:
        sys.path.append(_SIM_DIR)
    from raysim.gcs import GcsClient  # noqa: E402
    return GcsClient(address)


def _next_hex(nbytes):
    _counter[0] += 1
    return os.urandom(nbytes - 4).hex() + _counter[0].to_bytes(4, "little").hex()


# --------------------------------------------------------------------------- init / shutdown


class RayContext(dict):
    """What ray.init() returns (python/ray/_private/worker.py RayContext)."""

    def __init__(self, address, dashboard_url):
        super().__init__(address_info={"address": address, "gcs_address": address, "webui_url": dashboard_url},
                         dashboard_url=dashboard_url, python_version=sys.version.split()[0],
                         ray_version=__version__, ray_commit=__commit__)
        self.address_info = self["address_info"]
        self.dashboard_url = dashboard_url

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutdown()

    def disconnect(self):
        shutdown()


def is_initialized():
    return _state["initialized"]


def init(address=None, *, num_cpus=None, num_gpus=None, resources=None, namespace=None, runtime_env=None,
         ignore_reinit_error=False, **kwargs):
    """Connect to the simulated cluster, or run stand-alone (worker.py init)."""
    with _lock:
        if _state["initialized"]:
            if ignore_reinit_error:
                _log("Calling ray.init() again after it has already been called.")
                return RayContext(_state["address"], None)
            raise RuntimeError("Maybe you called ray.init twice by accident? This error can be suppressed by "
                               "passing in 'ignore_reinit_error=True' or by calling 'ray.shutdown()' prior to "
                               "'ray.init()'.")
        env_addr = os.environ.get("RAY_ADDRESS")
        if address is None and env_addr:
            address = env_addr
            _log("Using address %s set in the environment variable RAY_ADDRESS" % env_addr)
        if address == "auto":
            if not env_addr:
                raise ConnectionError("Could not find any running Ray instance. Please specify the one to "
                                      "connect to by setting `--address` flag or `RAY_ADDRESS` environment "
                                      "variable.")
            address = env_addr
        if address in (None, "local"):
            address = None
        if address and address.startswith("ray://"):
            address = address[len("ray://"):]
        dashboard_url = None
        gcs = None
        if address:
            if ":" not in address:
                address += ":6379"
            _log("Connecting to existing Ray cluster at address: %s..." % address)
            gcs = _gcs_client(address)
            deadline = time.time() + float(os.environ.get("RW_SIM_RAY_INIT_TIMEOUT_S", "10"))
            last = None
            while True:
                try:
                    gcs.call("check_alive", {"node_ids": []}, timeout=2.0)
                    break
                except Exception as exc:  # GcsError from the simulated GCS
                    last = exc
                if time.time() > deadline:
                    raise ConnectionError("Could not connect to the GCS at %s: %s" % (address, last))
                time.sleep(0.2)
            host = address.rsplit(":", 1)[0]
            dashboard_url = "%s:8265" % host
            _log("Connected to Ray cluster. View the dashboard at http://%s " % dashboard_url)
        else:
            _log("Started a local Ray instance.")
        _state.update(initialized=True, address=address, namespace=namespace, gcs=gcs, num_cpus=num_cpus,
                      runtime_env=runtime_env)
        return RayContext(address, dashboard_url)


def shutdown(_exiting_interpreter=False):
    with _lock:
        for key in [k for k, h in _named.items() if not h._detached]:
            _named.pop(key, None)
        _state.update(initialized=False, address=None, namespace=None, gcs=None, num_cpus=None)


def _auto_init():
    # Ray calls ray.init() implicitly on the first remote call (worker.py auto_init_ray).
    if not _state["initialized"]:
        init()


# --------------------------------------------------------------------------- objects


class ObjectRef:
    """A result: the value, or the error ray.get raises; pending until its task ran."""

    __slots__ = ("_id", "_value", "_error", "_done")

    def __init__(self, value=None, error=None, pending=False):
        self._id = _next_hex(28)
        self._value = value
        self._error = error
        self._done = threading.Event()
        if not pending:
            self._done.set()

    def _set(self, value=None, error=None):
        self._value = value
        self._error = error
        self._done.set()

    def _ready(self):
        return self._done.is_set()

    def hex(self):
        return self._id

    def binary(self):
        return bytes.fromhex(self._id)

    def __repr__(self):
        return "ObjectRef(%s)" % self._id

    def __hash__(self):
        return hash(self._id)

    def __eq__(self, other):
        return isinstance(other, ObjectRef) and other._id == self._id

    def _resolve(self, timeout=None):
        if not self._done.wait(timeout):
            raise GetTimeoutError("Get timed out: some object(s) not ready.")
        if self._error is not None:
            raise self._error
        return self._value

    def __await__(self):
        if False:
            yield None
        return self._resolve()

    def future(self):
        import concurrent.futures
        fut = concurrent.futures.Future()

        def fill():
            self._done.wait()
            if self._error is not None:
                fut.set_exception(self._error)
            else:
                fut.set_result(self._value)
        if self._ready():
            fill()
        else:
            threading.Thread(target=fill, daemon=True).start()
        return fut


def put(value, **kwargs):
    if isinstance(value, ObjectRef):
        raise TypeError("Calling 'put' on an ray.ObjectRef is not allowed. If you really want to do this, you "
                        "can wrap the ray.ObjectRef in a list and call 'put' on it.")
    _auto_init()
    return ObjectRef(value)


def get(object_refs, *, timeout=None):
    """Values of the refs, waiting for pending tasks; a task's exception is raised (worker.py get)."""
    _auto_init()
    deadline = None if timeout is None else time.time() + timeout

    def left():
        return None if deadline is None else max(0.0, deadline - time.time())
    if isinstance(object_refs, ObjectRef):
        return object_refs._resolve(left())
    if isinstance(object_refs, list):
        for r in object_refs:
            if not isinstance(r, ObjectRef):
                raise TypeError("Attempting to call `get` on the value %r, which is not an ray.ObjectRef." % (r,))
        return [r._resolve(left()) for r in object_refs]
    raise ValueError("'object_refs' must either be an ObjectRef or a list of ObjectRefs.")


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    """(ready, not ready), each in the order given, once num_returns are ready or at the timeout."""
    _auto_init()
    if isinstance(object_refs, ObjectRef):
        raise TypeError("wait() expected a list of ray.ObjectRef, got a single ray.ObjectRef")
    if not isinstance(object_refs, list):
        raise TypeError("wait() expected a list of ray.ObjectRef, got %s" % type(object_refs))
    if len(set(object_refs)) != len(object_refs):
        raise ValueError("Wait requires a list of unique object refs.")
    if num_returns <= 0:
        raise ValueError("Invalid number of objects to return %d." % num_returns)
    if num_returns > len(object_refs):
        raise ValueError("num_returns cannot be greater than the number of objects provided to ray.wait.")
    deadline = None if timeout is None else time.time() + timeout
    for _ in range(10 ** 9):
        ready = [r for r in object_refs if r._ready()]
        if len(ready) >= num_returns or (deadline is not None and time.time() >= deadline):
            break
        time.sleep(0.01)
    ready = ready[:num_returns]
    return ready, [r for r in object_refs if r not in ready]


# --------------------------------------------------------------------------- execution


def _with_env(options, fn, *args, **kwargs):
    """Run fn with the options' runtime_env env_vars applied, as a worker started
    with that runtime_env would see them."""
    env_vars = ((options.get("runtime_env") or {}).get("env_vars") or {})
    with _exec_lock:
        saved = {k: os.environ.get(k) for k in env_vars}
        os.environ.update({str(k): str(v) for k, v in env_vars.items()})
        try:
            result = fn(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            return result
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _resolve_args(args, kwargs):
    # Top-level ObjectRef arguments are passed as their values, as Ray does.
    args = [a._resolve() if isinstance(a, ObjectRef) else a for a in args]
    kwargs = {k: (v._resolve() if isinstance(v, ObjectRef) else v) for k, v in kwargs.items()}
    return args, kwargs


def _run(name, options, fn, args, kwargs):
    num_returns = options.get("num_returns", 1)
    try:
        args, kwargs = _resolve_args(args, kwargs)
        value = _with_env(options, fn, *args, **kwargs)
    except RayError as exc:
        # A dependency already failed: propagate it unchanged.
        return _refs_for_error(exc, num_returns)
    except Exception as exc:
        tb = traceback.format_exc()
        return _refs_for_error(_task_error(name, exc, tb), num_returns)
    if num_returns == 1:
        return ObjectRef(value)
    if num_returns == 0:
        return None
    values = list(value)
    if len(values) != num_returns:
        err = _task_error(name, ValueError("Task returned %d objects, but num_returns=%d." % (
            len(values), num_returns)), "")
        return _refs_for_error(err, num_returns)
    return [ObjectRef(v) for v in values]


def _refs_for_error(err, num_returns):
    if num_returns == 1:
        return ObjectRef(error=err)
    return [ObjectRef(error=err) for _ in range(num_returns)]


# --------------------------------------------------------------------------- leases
#
# Connected to a cluster, a task needs its resources on some node before it runs
# (num_cpus defaults to 1 for tasks: ray_option_utils.py). The driver asks the
# simulated GCS for a lease and keeps asking while none is granted; the waiting
# requests are the demand the autoscaler reads. The task then runs here, in the
# driver, holding the lease, and gives it back. A task whose node died while it
# ran is retried up to max_retries (default 3), as Ray retries tasks on node
# failure; then it fails with NodeDiedError.

LEASE_POLL_S = 0.1


def _shape(options, default_cpus):
    res = {}
    cpus = options.get("num_cpus", default_cpus)
    if cpus:
        res["CPU"] = float(cpus)
    if options.get("num_gpus"):
        res["GPU"] = float(options["num_gpus"])
    if options.get("memory"):
        res["memory"] = float(options["memory"])
    for k, v in (options.get("resources") or {}).items():
        if v:
            res[str(k)] = float(v)
    return res


def _acquire_lease(gcs, lease_id, shape):
    """Block until the GCS grants the lease; returns the node's id."""
    for _ in range(10 ** 9):
        try:
            rep = gcs.call("request_lease", {"lease_id": lease_id, "resources": shape,
                                             "owner": os.environ.get("RAY_JOB_ID", "")}, timeout=5.0)
            if rep.get("node_id"):
                return rep["node_id"]
        except Exception:  # GcsError: the GCS is briefly unreachable; keep the request alive
            pass
        time.sleep(LEASE_POLL_S)


def _return_lease(gcs, lease_id):
    """True when the lease's node died while it was held."""
    for _ in range(50):
        try:
            return bool(gcs.call("return_lease", {"lease_id": lease_id}, timeout=5.0).get("lost"))
        except Exception:
            time.sleep(LEASE_POLL_S)
    return False


def _submit_leased(name, options, fn, args, kwargs, shape):
    num_returns = options.get("num_returns", 1)
    refs = [ObjectRef(pending=True) for _ in range(max(num_returns, 1))]
    gcs = _state["gcs"]

    def execute():
        for r in list(args) + list(kwargs.values()):
            if isinstance(r, ObjectRef):
                r._done.wait()  # dependencies first, then the lease (as the owner does)
        retries = options.get("max_retries", 3)
        for attempt in range(10 ** 6):
            lease_id = _next_hex(16)
            _acquire_lease(gcs, lease_id, shape)
            out = _run(name, options, fn, args, kwargs)
            lost = _return_lease(gcs, lease_id)
            if lost and (retries == -1 or attempt < retries):
                continue
            if lost:
                err = exceptions.NodeDiedError("Task %s failed: the node it ran on died." % name)
                for r in refs:
                    r._set(error=err)
                return
            results = [out] if num_returns == 1 else ([] if out is None else out)
            for r, res in zip(refs, results):
                r._set(res._value, res._error)
            for r in refs[len(results):]:
                r._set(None)
            return
    threading.Thread(target=execute, daemon=True, name="task-" + name).start()
    if num_returns == 1:
        return refs[0]
    if num_returns == 0:
        return None
    return refs


_TASK_OPTIONS = {"num_cpus", "num_gpus", "memory", "resources", "accelerator_type", "max_calls", "max_retries",
                 "retry_exceptions", "num_returns", "runtime_env", "scheduling_strategy", "name", "label_selector",
                 "placement_group", "placement_group_bundle_index", "placement_group_capture_child_tasks",
                 "_metadata", "enable_task_events", "concurrency_groups", "object_store_memory", "max_restarts",
                 "max_task_retries", "max_concurrency", "max_pending_calls", "lifetime", "namespace",
                 "get_if_exists", "_generator_backpressure_num_objects", "allow_out_of_order_execution",
                 "fallback_strategy"}


def _check_options(options):
    for k in options:
        if k not in _TASK_OPTIONS:
            raise ValueError("Invalid option keyword %s for remote functions. " % k)


class RemoteFunction:
    def __init__(self, fn, options):
        _check_options(options)
        self._function = fn
        self._options = dict(options)
        self._name = fn.__qualname__
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        raise TypeError("Remote functions cannot be called directly. Instead of running '%s.%s()', try "
                        "'%s.%s.remote()'." % (self._function.__module__, self._name, self._function.__module__,
                                               self._name))

    def remote(self, *args, **kwargs):
        _auto_init()
        shape = _shape(self._options, 1)
        if _state["gcs"] is None or not shape or not isinstance(self._options.get("num_returns", 1), int):
            return _run(self._name, self._options, self._function, args, kwargs)
        return _submit_leased(self._name, self._options, self._function, args, kwargs, shape)

    def options(self, **options):
        merged = dict(self._options)
        merged.update(options)
        return RemoteFunction(self._function, merged)

    def bind(self, *args, **kwargs):
        raise NotImplementedError("Ray DAGs are not part of the simulator's `ray` stand-in.")


class ActorMethod:
    def __init__(self, handle, name, options=None):
        self._handle = handle
        self._name = name
        self._options = dict(options or {})

    def __call__(self, *args, **kwargs):
        raise TypeError("Actor methods cannot be called directly. Instead of running 'object.%s()', try "
                        "'object.%s.remote()'." % (self._name, self._name))

    def remote(self, *args, **kwargs):
        return self._handle._call(self._name, self._options, args, kwargs)

    def options(self, **options):
        merged = dict(self._options)
        merged.update(options)
        return ActorMethod(self._handle, self._name, merged)


class ActorHandle:
    def __init__(self, cls_name, instance, error, options):
        self._cls_name = cls_name
        self._instance = instance
        self._creation_error = error
        self._options = options
        self._actor_id = _next_hex(16)
        self._killed = False
        self._detached = options.get("lifetime") == "detached"
        self._lock = threading.Lock()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        inst = self.__dict__.get("_instance")
        cls = type(inst) if inst is not None else self.__dict__.get("_cls")
        if cls is not None and not callable(getattr(cls, name, None)):
            raise AttributeError("'ActorHandle' object has no attribute '%s'" % name)
        return ActorMethod(self, name)

    def __repr__(self):
        return "Actor(%s, %s)" % (self._cls_name, self._actor_id)

    def _died(self, why):
        return ActorDiedError("The actor died unexpectedly before finishing this task.\n\tclass_name: %s\n"
                              "\tactor_id: %s\n%s" % (self._cls_name, self._actor_id, why))

    def _call(self, method, options, args, kwargs):
        num_returns = options.get("num_returns", 1)
        if self._creation_error is not None:
            return _refs_for_error(self._died("The actor died because of an error raised in its creation task, "
                                              "%s" % self._creation_error), num_returns)
        if self._killed:
            return _refs_for_error(self._died("The actor was killed by `ray.kill`."), num_returns)
        fn = getattr(self._instance, method, None)
        if fn is None:
            raise AttributeError("'ActorHandle' object has no attribute '%s'" % method)
        with self._lock:
            return _run("%s.%s" % (self._cls_name, method), dict(self._options, **options), fn, args, kwargs)


class ActorClass:
    def __init__(self, cls, options):
        _check_options(options)
        self._cls = cls
        self._options = dict(options)
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__module__ = cls.__module__
        self.__doc__ = cls.__doc__

    def __call__(self, *args, **kwargs):
        raise TypeError("Actors cannot be instantiated directly. Instead of '%s()', use '%s.remote()'." % (
            self._cls.__name__, self._cls.__name__))

    def options(self, **options):
        merged = dict(self._options)
        merged.update(options)
        return ActorClass(self._cls, merged)

    def remote(self, *args, **kwargs):
        _auto_init()
        opts = self._options
        name = opts.get("name")
        ns = opts.get("namespace") or _state["namespace"] or "anonymous"
        if name:
            with _lock:
                existing = _named.get((ns, name))
                if existing is not None and not existing._killed:
                    if opts.get("get_if_exists"):
                        return existing
                    raise ValueError("The name %s (namespace=%s) is already taken. Please use a different name "
                                     "or get the existing actor using ray.get_actor('%s', namespace='%s')" % (
                                         name, ns, name, ns))
        instance = error = None
        try:
            args, kwargs = _resolve_args(args, kwargs)
            instance = _with_env(opts, self._cls, *args, **kwargs)
        except Exception as exc:
            error = _task_error("%s.__init__" % self._cls.__name__, exc, traceback.format_exc())
        handle = ActorHandle(self._cls.__name__, instance, error, opts)
        handle._cls = self._cls
        if name:
            with _lock:
                _named[(ns, name)] = handle
        return handle

    def bind(self, *args, **kwargs):
        raise NotImplementedError("Ray DAGs are not part of the simulator's `ray` stand-in.")


def remote(*args, **kwargs):
    """@ray.remote or @ray.remote(**options) on a function or a class."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make(args[0], {})
    if args:
        raise TypeError("The @ray.remote decorator must be applied either with no arguments and no "
                        "parentheses, for example '@ray.remote', or it must be applied using some of the "
                        "arguments in the list ['num_returns', 'num_cpus', 'num_gpus', 'memory', "
                        "'resources', 'max_calls', 'max_restarts', 'max_task_retries', 'max_retries', "
                        "'runtime_env', 'retry_exceptions', 'scheduling_strategy'], for example "
                        "'@ray.remote(num_returns=2, resources={\"CustomResource\": 1})'.")
    return lambda f: _make(f, kwargs)


def _make(obj, options):
    if inspect.isclass(obj):
        return ActorClass(obj, options)
    if callable(obj):
        return RemoteFunction(obj, options)
    raise TypeError("The @ray.remote decorator must be applied to either a function or a class.")


def method(*args, **kwargs):
    """@ray.method(num_returns=N): accepted; options apply per call through .options()."""
    def deco(f):
        f.__ray_method_options__ = kwargs
        return f
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return deco(args[0])
    return deco


def get_actor(name, namespace=None):
    if not name:
        raise ValueError("Please supply a non-empty value to get_actor")
    ns = namespace or _state["namespace"] or "anonymous"
    with _lock:
        h = _named.get((ns, name))
    if h is None or h._killed:
        raise ValueError("Failed to look up actor with name '%s'. This could because 1. You are trying to look up "
                         "a named actor you didn't create. 2. The named actor died. 3. You did not use a namespace "
                         "matching the namespace of the actor." % name)
    return h


def kill(actor, *, no_restart=True):
    if not isinstance(actor, ActorHandle):
        raise ValueError("ray.kill() only supported for actors. For tasks, try ray.cancel(). Got: %s." % (
            type(actor),))
    actor._killed = True


def cancel(ref, *, force=False, recursive=True):
    # Every task has already finished in the stand-in: nothing to cancel.
    return None


# --------------------------------------------------------------------------- cluster information


def _alive_nodes():
    gcs = _state["gcs"]
    if gcs is None:
        return None
    try:
        return [n for n in gcs.call("get_all_node_info", {}, timeout=2.0) if n.get("state") == "ALIVE"]
    except Exception:
        return None


def cluster_resources():
    """Sum over the simulated cluster's alive nodes (their --num-cpus), plus the
    per-node memory constants above; stand-alone: this machine."""
    _auto_init()
    nodes = _alive_nodes()
    if nodes is None:
        cpus = float(_state["num_cpus"] if _state["num_cpus"] is not None else (os.cpu_count() or 1))
        ip = os.environ.get("RW_SIM_POD_IP") or "127.0.0.1"
        return {"CPU": cpus, "memory": float(NODE_MEMORY), "object_store_memory": float(NODE_OBJECT_STORE_MEMORY),
                "node:" + ip: 1.0, "node:__internal_head__": 1.0}
    out = {}
    for n in nodes:
        for k, v in (n.get("resources") or {"CPU": n.get("num_cpus", 0)}).items():
            out[k] = out.get(k, 0.0) + float(v)
        if "memory" not in (n.get("resources") or {}):
            out["memory"] = out.get("memory", 0.0) + NODE_MEMORY
        out["object_store_memory"] = out.get("object_store_memory", 0.0) + NODE_OBJECT_STORE_MEMORY
        out["node:" + n["node_ip"]] = 1.0
        if n.get("is_head"):
            out["node:__internal_head__"] = 1.0
    if out.get("CPU", 0.0) == 0.0:
        out.pop("CPU", None)
    return out


def available_resources():
    """Same as cluster_resources(): the stand-in holds nothing while it is not running a task."""
    return cluster_resources()


def nodes():
    _auto_init()
    ns = _alive_nodes()
    if ns is None:
        ip = os.environ.get("RW_SIM_POD_IP") or "127.0.0.1"
        return [{"NodeID": "0" * 56, "Alive": True, "NodeManagerAddress": ip, "NodeName": ip,
                 "Resources": cluster_resources()}]
    return [{"NodeID": n["node_id"], "Alive": True, "NodeManagerAddress": n["node_ip"],
             "NodeName": n.get("node_name", n["node_ip"]), "Resources": dict(n.get("resources") or {})} for n in ns]


class RuntimeContext:
    def get_job_id(self):
        return os.environ.get("RAY_JOB_ID", "01000000")

    def get_node_id(self):
        return "0" * 56

    def get_namespace(self):
        return _state["namespace"] or "anonymous"

    @property
    def namespace(self):
        return self.get_namespace()

    @property
    def gcs_address(self):
        return _state["address"]

    def get_runtime_env_string(self):
        import json
        return json.dumps(_state["runtime_env"] or {})


def get_runtime_context():
    return RuntimeContext()


def timeline(filename=None):
    return []
