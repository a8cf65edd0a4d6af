"""ray.job_submission of the stand-in: JobSubmissionClient over the simulated
dashboard's Jobs REST API (dashboard/modules/job/sdk.py, common.py,
pydantic_models.py). Errors are raised as the SDK raises them:
RuntimeError("Request failed with status code N: <body>.")."""

import enum
import json
import os
import sys

_SIM_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _SIM_DIR not in sys.path:
    sys.path.append(_SIM_DIR)

from raysim import packaging  # noqa: E402
from raysim.cli import ApiError, JobClient  # noqa: E402


class JobStatus(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def __str__(self):
        return self.value

    def is_terminal(self):
        return self.value in ("STOPPED", "SUCCEEDED", "FAILED")


class JobType(str, enum.Enum):
    SUBMISSION = "SUBMISSION"
    DRIVER = "DRIVER"


class JobDetails:
    """Attribute view of a JobDetails JSON object."""

    def __init__(self, d):
        self._d = dict(d)
        for k, v in d.items():
            setattr(self, k, v)
        self.status = JobStatus(d["status"])
        if d.get("type"):
            self.type = JobType(d["type"])

    def dict(self):
        return dict(self._d)

    def __repr__(self):
        return "JobDetails(%s)" % ", ".join("%s=%r" % kv for kv in self._d.items())


JobInfo = JobDetails


class JobSubmissionClient:
    def __init__(self, address=None, create_cluster_if_needed=False, cookies=None, metadata=None, headers=None,
                 verify=True):
        address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS")
        if not address:
            raise ValueError("Address must be specified using either the --address flag or RAY_ADDRESS "
                             "environment variable.")
        self._client = JobClient(address)
        self._default_metadata = dict(metadata or {})
        self._call(self._client.request, "GET", "/api/version")

    @staticmethod
    def _call(fn, *args):
        try:
            return fn(*args)
        except ApiError as exc:
            raise RuntimeError(str(exc))

    def get_address(self):
        return self._client.address

    def get_version(self):
        return json.loads(self._call(self._client.request, "GET", "/api/version")[1])["version"]

    def submit_job(self, *, entrypoint, job_id=None, runtime_env=None, metadata=None, submission_id=None,
                   entrypoint_num_cpus=None, entrypoint_num_gpus=None, entrypoint_memory=None,
                   entrypoint_resources=None, entrypoint_label_selector=None):
        body = {"entrypoint": entrypoint}
        if submission_id or job_id:
            body["submission_id"] = submission_id or job_id
        if runtime_env:
            body["runtime_env"] = packaging.upload_if_needed(runtime_env, self._client.raw)
        md = dict(self._default_metadata)
        md.update(metadata or {})
        if md:
            body["metadata"] = md
        for k, v in (("entrypoint_num_cpus", entrypoint_num_cpus), ("entrypoint_num_gpus", entrypoint_num_gpus),
                     ("entrypoint_memory", entrypoint_memory), ("entrypoint_resources", entrypoint_resources),
                     ("entrypoint_label_selector", entrypoint_label_selector)):
            if v is not None:
                body[k] = v
        return self._call(self._client.json, "POST", "/api/jobs/", body)["submission_id"]

    def get_job_info(self, job_id):
        return JobDetails(self._call(self._client.json, "GET", "/api/jobs/%s" % job_id))

    def get_job_status(self, job_id):
        return self.get_job_info(job_id).status

    def list_jobs(self):
        return [JobDetails(d) for d in self._call(self._client.json, "GET", "/api/jobs/")]

    def get_job_logs(self, job_id):
        return self._call(self._client.json, "GET", "/api/jobs/%s/logs" % job_id)["logs"]

    def stop_job(self, job_id):
        return self._call(self._client.json, "POST", "/api/jobs/%s/stop" % job_id)["stopped"]

    def delete_job(self, job_id):
        return self._call(self._client.json, "DELETE", "/api/jobs/%s" % job_id)["deleted"]

    async def tail_job_logs(self, job_id):
        """Async iterator over new log text, as the SDK's (a WebSocket underneath)."""
        from raysim import ws
        c = ws.Client(self._client.host, self._client.port, "/api/jobs/%s/logs/tail" % job_id)
        try:
            for msg in c.messages():
                yield msg
        finally:
            c.close()


__all__ = ["JobSubmissionClient", "JobStatus", "JobInfo", "JobDetails", "JobType"]
