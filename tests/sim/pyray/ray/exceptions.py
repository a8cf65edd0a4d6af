"""Exceptions of the `ray` stand-in (python/ray/exceptions.py names).

RayTaskError.as_instanceof_cause() in Ray builds a class deriving from both
RayTaskError and the user's exception class, so `except ZeroDivisionError`
still catches a failed task; `_task_error` does the same.
"""

import os


class RayError(Exception):
    """Super class of all ray exception types."""


class RayTaskError(RayError):
    def __init__(self, function_name="", traceback_str="", cause=None, pid=None, ip=None):
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.pid = pid if pid is not None else os.getpid()
        self.ip = ip or os.environ.get("RW_SIM_POD_IP") or "127.0.0.1"
        super().__init__(self._message())

    def _message(self):
        # exceptions.py RayTaskError.__str__: "ray::<fn>() (pid=N, ip=A)" then the traceback.
        return "ray::%s() (pid=%d, ip=%s)\n%s" % (self.function_name, self.pid, self.ip,
                                                   self.traceback_str.rstrip("\n"))

    def __str__(self):
        return self._message()


class RayActorError(RayError):
    def __init__(self, message="The actor died unexpectedly before finishing this task."):
        self.error_msg = message
        super().__init__(message)

    def __str__(self):
        return self.error_msg


class ActorDiedError(RayActorError):
    pass


class ActorUnavailableError(RayActorError):
    pass


class GetTimeoutError(RayError, TimeoutError):
    pass


class RuntimeEnvSetupError(RayError):
    def __init__(self, error_message=None):
        self.error_message = error_message
        super().__init__(error_message)

    def __str__(self):
        msgs = ["Failed to set up runtime environment."]
        if self.error_message:
            msgs.append(self.error_message)
        return "\n".join(msgs)


class TaskCancelledError(RayError):
    pass


class ObjectLostError(RayError):
    pass


def _task_error(function_name, cause, traceback_str):
    """A RayTaskError that is also an instance of the cause's class."""
    cause_cls = type(cause)
    if issubclass(cause_cls, RayTaskError):
        return cause
    try:
        cls = type("RayTaskError(%s)" % cause_cls.__name__, (RayTaskError, cause_cls), {
            "__init__": lambda self, *a, **k: None,
            "__str__": RayTaskError.__str__,
        })
        err = cls()
        err.function_name = function_name
        err.traceback_str = traceback_str
        err.cause = cause
        err.pid = os.getpid()
        err.ip = os.environ.get("RW_SIM_POD_IP") or "127.0.0.1"
        err.args = (err._message(),)
        return err
    except TypeError:
        return RayTaskError(function_name, traceback_str, cause)


class NodeDiedError(RayError):
    """The node a task ran on died (python/ray/exceptions.py NodeDiedError)."""
