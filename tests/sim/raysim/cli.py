"""The `ray` command of the simulator (tests/sim/bin/ray).

Argument handling mimics click as used by python/ray/scripts/scripts.py and
dashboard/modules/job/cli.py: `--opt=value` or `--opt value`, flags take no
value, an unknown option is a usage error ("Error: No such option: --x",
exit 2), a bad integer is "Error: Invalid value for '--x': 'y' is not a valid
integer." (exit 2). Runtime failures exit 1, like an uncaught exception in Ray's CLI.
"""

import json
import os
import pprint
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from . import common

SIM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UsageError(Exception):
    def __init__(self, msg, cmd):
        super().__init__(msg)
        self.cmd = cmd


# name -> type: "flag", "int", "float", "str", "bool", ("choice", [...])
START_OPTIONS = {
    "node-ip-address": "str", "address": "str", "port": "int", "node-name": "str",
    "redis-username": "str", "redis-password": "str", "redis-shard-ports": "str",
    "object-manager-port": "int", "node-manager-port": "int", "gcs-server-port": "int",
    "min-worker-port": "int", "max-worker-port": "int", "worker-port-list": "str",
    "ray-client-server-port": "int", "memory": "int", "object-store-memory": "int",
    "num-cpus": "int", "num-gpus": "int", "resources": "str", "head": "flag",
    "include-dashboard": "bool", "dashboard-host": "str", "dashboard-port": "int",
    "dashboard-agent-listen-port": "int", "dashboard-agent-grpc-port": "int",
    "dashboard-grpc-port": "int", "runtime-env-agent-port": "int", "block": "flag",
    "plasma-directory": "str", "object-spilling-directory": "str", "autoscaling-config": "str",
    "no-redirect-output": "flag", "plasma-store-socket-name": "str", "raylet-socket-name": "str",
    "temp-dir": "str", "storage": "str", "system-config": "str",
    "enable-object-reconstruction": "flag", "metrics-export-port": "int", "no-monitor": "flag",
    "tracing-startup-hook": "str", "ray-debugger-external": "flag", "disable-usage-stats": "flag",
    "include-log-monitor": "bool", "labels": "str", "labels-file": "str",
    "enable-resource-isolation": "flag", "cgroup-path": "str", "system-reserved-cpu": "float",
    "system-reserved-memory": "int", "log-style": ("choice", ["auto", "record", "pretty"]),
    "log-color": ("choice", ["auto", "false", "true"]), "verbose": "flag", "v": "flag",
}

COMMON_JOB = {"address": "str", "headers": "str", "verify": "str", "verbose": "flag", "v": "flag",
              "log-style": ("choice", ["auto", "record", "pretty"]),
              "log-color": ("choice", ["auto", "false", "true"])}

JOB_OPTIONS = {
    "submit": dict(COMMON_JOB, **{
        "job-id": "str", "submission-id": "str", "runtime-env": "str", "runtime-env-json": "str",
        "metadata-json": "str", "working-dir": "str", "entrypoint-num-cpus": "float",
        "entrypoint-num-gpus": "float", "entrypoint-memory": "int", "entrypoint-resources": "str",
        "entrypoint-label-selector": "str", "no-wait": "flag"}),
    "status": dict(COMMON_JOB),
    "stop": dict(COMMON_JOB, **{"no-wait": "flag"}),
    "logs": dict(COMMON_JOB, **{"follow": "flag", "f": "flag"}),
    "list": dict(COMMON_JOB),
    "delete": dict(COMMON_JOB),
}

HEALTH_OPTIONS = {"address": "str", "redis_password": "str", "component": "str", "skip-version-check": "flag"}
STOP_OPTIONS = {"force": "flag", "f": "flag", "grace-period": "int", "g": "int", "verbose": "flag", "v": "flag",
                "log-style": ("choice", ["auto", "record", "pretty"]),
                "log-color": ("choice", ["auto", "false", "true"])}
STATUS_OPTIONS = {"address": "str", "redis_password": "str", "verbose": "flag", "v": "flag"}
# scripts.py kuberay_autoscaler: both options required=True, type=str.
AUTOSCALER_OPTIONS = {"cluster-name": "str", "cluster-namespace": "str"}


def parse(cmd, specs, args, nargs_max):
    """Click-like parser. Returns (options dict, positional list)."""
    opts = {}
    pos = []
    i = 0
    rest_only = False
    while i < len(args):
        a = args[i]
        if rest_only or not a.startswith("-") or a == "-":
            pos.append(a)
            i += 1
            if nargs_max is None and cmd == "ray job submit":
                # nargs=-1 argument: the remaining tokens are the entrypoint.
                rest_only = True
            continue
        if a == "--":
            rest_only = True
            i += 1
            continue
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
        else:
            name, eq, val = a[1:2], "=" if len(a) > 2 else "", a[2:]
        if name in ("help", "h") and name == "help":
            print("Usage: %s [OPTIONS]" % cmd)
            raise SystemExit(0)
        spec = specs.get(name)
        if spec is None:
            raise UsageError("No such option: %s" % a.split("=")[0], cmd)
        if spec == "flag":
            if eq:
                raise UsageError("Option '%s' does not take a value." % a.split("=")[0], cmd)
            opts[name] = True
            i += 1
            continue
        if not eq:
            if i + 1 >= len(args):
                raise UsageError("Option '%s' requires an argument." % a, cmd)
            val = args[i + 1]
            i += 2
        else:
            i += 1
        opts[name] = convert(name, spec, val, cmd)
    if nargs_max is not None and len(pos) > nargs_max:
        raise UsageError("Got unexpected extra argument (%s)" % pos[nargs_max], cmd)
    return opts, pos


def convert(name, spec, val, cmd):
    label = "'--%s'" % name if len(name) > 1 else "'-%s'" % name
    if spec == "int":
        try:
            return int(val)
        except ValueError:
            raise UsageError("Invalid value for %s: '%s' is not a valid integer." % (label, val), cmd)
    if spec == "float":
        try:
            return float(val)
        except ValueError:
            raise UsageError("Invalid value for %s: '%s' is not a valid float." % (label, val), cmd)
    if spec == "bool":
        low = val.lower()
        if low in ("1", "true", "t", "yes", "y", "on"):
            return True
        if low in ("0", "false", "f", "no", "n", "off"):
            return False
        raise UsageError("Invalid value for %s: '%s' is not a valid boolean." % (label, val), cmd)
    if isinstance(spec, tuple):
        if val not in spec[1]:
            raise UsageError("Invalid value for %s: '%s' is not one of %s." % (
                label, val, ", ".join("'%s'" % c for c in spec[1])), cmd)
    return val


def usage_exit(err):
    sys.stderr.write("Usage: %s [OPTIONS]\nTry '%s --help' for help.\n\nError: %s\n" % (err.cmd, err.cmd, err))
    return 2


# ---------------------------------------------------------------- ray start


def cmd_start(args):
    opts, _ = parse("ray start", START_OPTIONS, args, 0)
    node_opts = {k.replace("-", "_"): v for k, v in opts.items()}
    if not opts.get("head"):
        addr = opts.get("address") or os.environ.get("RAY_ADDRESS")
        if not addr:
            print("ConnectionError: Could not find any running Ray instance. Please specify the one to connect "
                  "to by setting `--address` flag or `RAY_ADDRESS` environment variable.", file=sys.stderr)
            return 1
        node_opts["address"] = addr
    if opts.get("resources"):
        try:
            json.loads(opts["resources"])
        except ValueError:
            print("Unable to parse the --resources argument using json.loads. Try using a format like\n\n"
                  "    --resources='{\"CustomResource1\": 3, \"CustomReseource2\": 2}'", file=sys.stderr)
            return 1
    from . import node as nodemod
    if opts.get("block"):
        return nodemod.run(node_opts)
    # Without --block Ray starts its processes in the background and returns.
    rfd, wfd = os.pipe()
    tmp = node_opts.get("temp_dir") or os.environ.get("RW_SIM_TMPDIR") or os.path.join(
        "/tmp/raysim", node_opts.get("node_ip_address") or os.environ.get("RW_SIM_POD_IP") or "127.0.0.1")
    os.makedirs(tmp, exist_ok=True)
    out = open(os.path.join(tmp, "node.out"), "ab")
    env = dict(os.environ)
    env["PYTHONPATH"] = SIM_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    subprocess.Popen([sys.executable, "-m", "raysim.node", json.dumps(node_opts), str(wfd)], pass_fds=(wfd,),
                     stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    os.close(wfd)
    out.close()
    status = b""
    deadline = time.time() + 60
    while time.time() < deadline:
        chunk = os.read(rfd, 1)
        if not chunk:
            break
        status = chunk
        break
    os.close(rfd)
    if status != b"R":
        print("Failed to start the Ray node; see %s" % os.path.join(tmp, "node.out"), file=sys.stderr)
        return 1
    print(nodemod.Node(node_opts).banner())
    return 0


def cmd_stop(args):
    opts, _ = parse("ray stop", STOP_OPTIONS, args, 0)
    ip = os.environ.get("RW_SIM_POD_IP") or "127.0.0.1"
    pidfile = os.path.join(os.environ.get("RW_SIM_TMPDIR") or os.path.join("/tmp/raysim", ip), "node.pid")
    try:
        pid = int(open(pidfile).read().strip())
        os.kill(pid, signal.SIGKILL if opts.get("force") or opts.get("f") else signal.SIGTERM)
    except (OSError, ValueError):
        print("Did not find any active Ray processes.")
        return 0
    grace = opts.get("grace-period", opts.get("g", 16))
    deadline = time.time() + grace
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    try:
        os.remove(pidfile)
    except OSError:
        pass
    print("Stopped all 1 Ray processes.")
    return 0


def cmd_health_check(args):
    opts, _ = parse("ray health-check", HEALTH_OPTIONS, args, 0)
    addr = opts.get("address") or os.environ.get("RAY_ADDRESS")
    if not addr:
        return 1
    from .gcs import GcsClient, GcsError
    try:
        # A GCS that answers CheckAlive is healthy (scripts.py healthcheck).
        GcsClient(addr.replace("ray://", "")).call("check_alive", {"node_ids": []}, timeout=3.0)
    except (GcsError, ValueError):
        return 1
    return 0


def cmd_status(args):
    opts, _ = parse("ray status", STATUS_OPTIONS, args, 0)
    addr = opts.get("address") or os.environ.get("RAY_ADDRESS") or "127.0.0.1:6379"
    from .gcs import GcsClient, GcsError
    try:
        nodes = GcsClient(addr).call("get_all_node_info", {}, timeout=3.0)
    except GcsError as exc:
        print("ConnectionError: Could not connect to Ray at %s: %s" % (addr, exc), file=sys.stderr)
        return 1
    print("======== Autoscaler status: %s ========" % time.strftime("%Y-%m-%d %H:%M:%S"))
    print("Node status\n" + "-" * 56)
    alive = [n for n in nodes if n["state"] == "ALIVE"]
    print("Active:")
    for n in alive:
        print(" 1 node_%s" % n["node_id"])
    print("Dead:")
    for n in nodes:
        if n["state"] != "ALIVE":
            print(" 1 node_%s" % n["node_id"])
    print("\nResources\n" + "-" * 56)
    print("Total Usage:\n 0.0/%.1f CPU" % sum(float(n.get("num_cpus", 0)) for n in alive))
    return 0


def cmd_kuberay_autoscaler(args):
    """Stand-in for the KubeRay autoscaler sidecar's entry point: waits for the
    GCS, then scales the RayCluster's worker groups as Ray's autoscaler does
    (raysim/autoscaler.py)."""
    opts, _ = parse("ray kuberay-autoscaler", AUTOSCALER_OPTIONS, args, 0)
    for name in ("cluster-name", "cluster-namespace"):
        if name not in opts:
            raise UsageError("Missing option '--%s'." % name, "ray kuberay-autoscaler")
    from .autoscaler import Standin
    return Standin(opts["cluster-name"], opts["cluster-namespace"]).run()


# ---------------------------------------------------------------- ray job


class ApiError(Exception):
    pass


class JobClient:
    """Thin JobSubmissionClient (dashboard/modules/job/sdk.py): raises like the
    SDK on any non-200 ("Request failed with status code N: <body>.")."""

    def __init__(self, address):
        if "://" not in address:
            address = "http://" + address
        self.address = address.rstrip("/")
        u = urllib.parse.urlsplit(self.address)
        self.host = common.cluster_resolve(common.pod_local(u.hostname or ""))
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.target = "%s://%s:%d" % (u.scheme, self.host, self.port)

    def raw(self, method, path, body=None):
        """(status, text) for any answer; ConnectionError when unreachable."""
        if isinstance(body, (dict, list)):
            data, ctype = json.dumps(body).encode(), "application/json"
        else:
            data, ctype = body, "application/octet-stream"
        req = urllib.request.Request(self.target + path, data=data, method=method,
                                     headers={"Content-Type": ctype} if data is not None else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            raise ConnectionError("Failed to connect to Ray at address: %s. (%s)" % (self.address, exc))

    def request(self, method, path, body=None):
        status, text = self.raw(method, path, body)
        if status != 200:
            raise ApiError("Request failed with status code %d: %s." % (status, text))
        return status, text

    def json(self, method, path, body=None):
        return json.loads(self.request(method, path, body)[1])

    def tail(self, jid):
        """sdk.py tail_job_logs: text frames of the WebSocket /logs/tail until it closes."""
        from . import ws
        try:
            c = ws.Client(self.host, self.port, "/api/jobs/%s/logs/tail" % jid)
        except ws.HandshakeError as exc:
            raise ApiError("aiohttp.client_exceptions.WSServerHandshakeError: %s, url='%s/api/jobs/%s/logs/tail'"
                           % (exc, self.address.replace("http", "ws", 1), jid))
        except OSError as exc:
            raise ConnectionError("Failed to connect to Ray at address: %s. (%s)" % (self.address, exc))
        try:
            for msg in c.messages():
                sys.stdout.write(msg)
                sys.stdout.flush()
        except OSError:
            pass
        finally:
            c.close()


def job_address(opts):
    # --address, else RAY_API_SERVER_ADDRESS, else RAY_ADDRESS (cli.py help).
    addr = opts.get("address") or os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS")
    if not addr:
        raise ValueError("Address must be specified using either the --address flag or RAY_ADDRESS "
                         "environment variable.")
    return addr


def big_msg(msg):
    # cli.py _log_big_success_msg / _log_big_error_msg.
    print("")
    print("-" * len(msg))
    print(msg)
    print("-" * len(msg))
    print("")


def log_job_status(client, jid):
    """cli.py _log_job_status, used by status, stop, logs --follow and submit."""
    info = client.json("GET", "/api/jobs/%s" % jid)
    status = info["status"]
    if status == "SUCCEEDED":
        big_msg("Job '%s' succeeded" % jid)
    elif status == "STOPPED":
        print("Job '%s' was stopped" % jid)
    elif status == "FAILED":
        big_msg("Job '%s' failed" % jid)
        if info.get("message") is not None:
            print("Status message: %s" % info["message"])
    else:
        print("Status for job '%s': %s" % (jid, status))
        if info.get("message") is not None:
            print("Status message: %s" % info["message"])
    sys.stdout.flush()
    return status


def cmd_job(args):
    if not args:
        sys.stderr.write("Usage: ray job [OPTIONS] COMMAND [ARGS]...\n\nError: Missing command.\n")
        return 2
    sub, rest = args[0], args[1:]
    if sub not in JOB_OPTIONS:
        sys.stderr.write("Usage: ray job [OPTIONS] COMMAND [ARGS]...\nTry 'ray job --help' for help.\n\n"
                         "Error: No such command '%s'.\n" % sub)
        return 2
    cmd = "ray job " + sub
    opts, pos = parse(cmd, JOB_OPTIONS[sub], rest, None if sub == "submit" else (0 if sub == "list" else 1))
    if sub not in ("submit", "list") and not pos:
        raise UsageError("Missing argument 'JOB_ID'.", cmd)
    try:
        client = JobClient(job_address(opts))
        # JobSubmissionClient.__init__ checks the server first (GET /api/version).
        client.request("GET", "/api/version")
        print("Job submission server address: %s" % client.address, flush=True)
        return JOB_COMMANDS[sub](client, opts, pos)
    except (ApiError, ConnectionError, ValueError, RuntimeError) as exc:
        sys.stdout.flush()
        # click lets the exception escape: a traceback and exit code 1.
        sys.stderr.write("Traceback (most recent call last):\n  File \"ray/dashboard/modules/job/cli.py\"\n"
                         "%s: %s\n" % ("RuntimeError" if isinstance(exc, ApiError) else type(exc).__name__, exc))
        return 1


def runtime_env_from(opts):
    """dashboard_sdk.py parse_runtime_env_args."""
    if opts.get("runtime-env") and opts.get("runtime-env-json"):
        raise ValueError("Only one of --runtime_env and --runtime-env-json can be provided.")
    env = None
    if opts.get("runtime-env"):
        with open(opts["runtime-env"]) as f:
            text = f.read()
        try:
            env = json.loads(text)  # YAML is a superset; the simulator reads the JSON subset only
        except ValueError:
            raise ValueError("The simulator reads --runtime-env files written as JSON only: %s" %
                             opts["runtime-env"])
    elif opts.get("runtime-env-json"):
        env = json.loads(opts["runtime-env-json"])
    if opts.get("working-dir"):
        env = dict(env or {})
        env["working_dir"] = opts["working-dir"]
    return env


def job_submit(client, opts, pos):
    if not pos:
        raise UsageError("Missing argument 'ENTRYPOINT...'.", "ray job submit")
    if opts.get("job-id"):
        print("--job-id option is deprecated. Please use --submission-id instead.")
    body = {"entrypoint": shlex.join(pos)}
    sid = opts.get("submission-id") or opts.get("job-id")
    if sid:
        body["submission_id"] = sid
    env = runtime_env_from(opts)
    if env:
        from . import packaging
        body["runtime_env"] = packaging.upload_if_needed(env, client.raw)
    if opts.get("metadata-json"):
        body["metadata"] = json.loads(opts["metadata-json"])
    for k in ("entrypoint-num-cpus", "entrypoint-num-gpus", "entrypoint-memory"):
        if opts.get(k) is not None:
            body[k.replace("-", "_")] = opts[k]
    if opts.get("entrypoint-resources"):
        body["entrypoint_resources"] = json.loads(opts["entrypoint-resources"])
    if opts.get("entrypoint-label-selector"):
        body["entrypoint_label_selector"] = json.loads(opts["entrypoint-label-selector"])
    rep = client.json("POST", "/api/jobs/", body)
    jid = rep["submission_id"]
    big_msg("Job '%s' submitted successfully" % jid)
    print("Next steps")
    print("  Query the logs of the job:")
    print("    ray job logs %s" % jid)
    print("  Query the status of the job:")
    print("    ray job status %s" % jid)
    print("  Request the job to be stopped:")
    print("    ray job stop %s" % jid)
    print("", flush=True)
    if opts.get("no-wait"):
        return 0
    print("Tailing logs until the job exits (disable with --no-wait):", flush=True)
    client.tail(jid)
    status = log_job_status(client, jid)
    # cli.py submit: exits 1 only when the job FAILED.
    return 1 if status == "FAILED" else 0


def job_status(client, opts, pos):
    log_job_status(client, pos[0])
    return 0


def job_stop(client, opts, pos):
    jid = pos[0]
    print("Attempting to stop job '%s'" % jid)
    client.json("POST", "/api/jobs/%s/stop" % jid)
    if opts.get("no-wait"):
        return 0
    print("Waiting for job '%s' to exit (disable with --no-wait):" % jid, flush=True)
    for _ in range(10 ** 6):
        info = client.json("GET", "/api/jobs/%s" % jid)
        if info["status"] in ("STOPPED", "SUCCEEDED", "FAILED"):
            log_job_status(client, jid)
            return 0
        print("Job has not exited yet. Status: %s" % info["status"], flush=True)
        time.sleep(1)
    return 1


def job_logs(client, opts, pos):
    jid = pos[0]
    if opts.get("follow") or opts.get("f"):
        # cli.py logs --follow: tail until the stream ends, log the status, exit 0
        # whatever the job's status.
        client.tail(jid)
        log_job_status(client, jid)
        return 0
    sys.stdout.write(client.json("GET", "/api/jobs/%s/logs" % jid)["logs"])
    return 0


def job_list(client, opts, pos):
    print(pprint.pformat(client.json("GET", "/api/jobs/")))
    return 0


def job_delete(client, opts, pos):
    client.json("DELETE", "/api/jobs/%s" % pos[0])
    print("Job '%s' deleted successfully" % pos[0])
    return 0


JOB_COMMANDS = {"submit": job_submit, "status": job_status, "stop": job_stop, "logs": job_logs,
                "list": job_list, "delete": job_delete}

COMMANDS = {"start": cmd_start, "stop": cmd_stop, "health-check": cmd_health_check, "job": cmd_job,
            "status": cmd_status, "kuberay-autoscaler": cmd_kuberay_autoscaler}


def main(argv):
    if not argv or argv[0] in ("--help", "-h"):
        print("Usage: ray [OPTIONS] COMMAND [ARGS]...\n\nCommands:\n  " + "\n  ".join(sorted(COMMANDS)))
        return 0 if argv else 2
    if argv[0] == "--version":
        print("ray, version %s" % common.RAY_VERSION)
        return 0
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        sys.stderr.write("Usage: ray [OPTIONS] COMMAND [ARGS]...\nTry 'ray --help' for help.\n\n"
                         "Error: No such command '%s'.\n" % argv[0])
        return 2
    try:
        return cmd(argv[1:])
    except UsageError as err:
        return usage_exit(err)
