"""Running the ``command`` form of ``task`` nodes: which programs may start, and how.

A command is an argv list started **without a shell** (``asyncio.create_subprocess_exec``),
so nothing in a definition is ever parsed as shell syntax. The operator decides what may
run (``[tasks]`` in the server config):

* ``allow_commands`` — off by default; while off, every command node fails;
* ``command_allowlist`` — the programs that may start. An entry is an absolute path
  (``/usr/bin/convert``) or a bare name (``convert``), which means *the program that name
  resolves to on the server's PATH*.

A node's program is resolved the same way — an absolute path as written (normalised, so
``..`` cannot walk out), a bare name through the server's PATH (never the node's ``env``)
— and compared with the resolved allow-list entries by *directory (symlinks resolved) and
file name*. Directory symlinks such as Debian's ``/bin → /usr/bin`` therefore match, while a
program reached through a differently named link (``sh`` linked to an allowed ``busybox``,
or a link named ``echo`` in another directory) does not. A relative path (``../../bin/sh``)
is refused outright. The path that was compared is the path that is executed.

Each run gets a fresh, empty temporary working directory (removed afterwards), a minimal
environment (``PATH``, ``LANG``, ``HOME``/``TMPDIR`` = the working directory, the node's
``FLOWYARD_*`` identifiers, then the node's ``env``) — never the server's own environment,
which may hold secrets — and stdin from ``/dev/null``. It starts in a new session, so the
whole process group can be killed: on timeout or cancellation (SIGKILL), and also when
the program exits, so nothing it left behind keeps running. stdout and stderr are read
concurrently and each kept up to ``max_output_bytes`` (the rest is read and dropped, so a
chatty program never blocks on a full pipe).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from server.durations import format_duration, parse_duration

if TYPE_CHECKING:
    from server.config import TasksSettings

#: Environment given to every command before the node's own ``env``.
BASE_LANG = "C.UTF-8"
#: Environment names a node's ``env`` may not set: they make a program load other code
#: (dynamic-loader and interpreter start-up hooks) or are set by Flowyard itself. This is
#: a safety net; the allow-list is the boundary.
FORBIDDEN_ENV_PREFIXES = ("LD_", "DYLD_", "FLOWYARD_")
FORBIDDEN_ENV_NAMES = frozenset(
    {
        "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "IFS", "GCONV_PATH",
        "PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONINSPECT",
        "PYTHONWARNINGS", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB",
        "NODE_OPTIONS", "NODE_PATH", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
    }
)  # fmt: skip
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Bytes read from a pipe at a time.
CHUNK = 64 * 1024
#: Characters of stderr quoted in a failure message.
STDERR_TAIL = 500
DISABLED_MESSAGE = (
    "task commands are disabled on this server; an operator can enable them with "
    "[tasks] allow_commands = true (or FLOWYARD_TASKS_ALLOW_COMMANDS=true) and list the "
    "program in [tasks] command_allowlist"
)


class CommandRefused(Exception):
    """A command may not run (or cannot be found); the message says which setting to change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """Which programs ``task`` commands may start on this server.

    ``search_path`` is the PATH used to resolve bare names (of nodes and of allow-list
    entries alike); it is the server's PATH, also handed to the programs.
    """

    allow_commands: bool = False
    allowlist: tuple[str, ...] = ()
    search_path: str = os.defpath

    @classmethod
    def from_settings(cls, tasks: TasksSettings, search_path: str | None = None) -> CommandPolicy:
        path = search_path if search_path is not None else os.environ.get("PATH", os.defpath)
        return cls(tasks.allow_commands, tuple(tasks.command_allowlist), path)

    def resolve(self, program: str) -> str:
        """The absolute path to execute for ``program``; :class:`CommandRefused` if none."""
        if not self.allow_commands:
            raise CommandRefused(DISABLED_MESSAGE)
        path = self.locate(program)
        if not self.permits(path):
            shown = program if program == path else f"{program} (resolved to {path})"
            raise CommandRefused(
                f"the program {shown} is not on this server's [tasks] command_allowlist; an "
                f"operator can add {path!r} there (entries are absolute paths, or bare names "
                "resolved on the server's PATH)"
            )
        return path

    def refusal(self, program: str) -> str | None:
        """Why ``program`` could not run here, or ``None`` — for definition-time warnings."""
        try:
            self.resolve(program)
        except CommandRefused as refused:
            return refused.message
        return None

    def locate(self, program: str) -> str:
        """Resolve a program: an absolute path as written (normalised), a bare name on PATH."""
        if not program or "\x00" in program:
            raise CommandRefused("the command's program is empty or contains a NUL character")
        if "/" in program:
            if not os.path.isabs(program):
                raise CommandRefused(
                    f"the program {program!r} is a relative path; give an absolute path or a "
                    "bare name found on the server's PATH"
                )
            found = shutil.which(os.path.normpath(program))
            where = "it does not exist or is not an executable file"
        else:
            found = shutil.which(program, path=self.search_path)
            where = "it is not an executable on the server's PATH"
        if found is None or not os.path.isabs(found):
            hint = "; to pass arguments, write the command as a list" if " " in program else ""
            raise CommandRefused(f"cannot run the program {program!r}: {where}{hint}")
        return os.path.normpath(found)

    def permits(self, path: str) -> bool:
        """Whether the resolved ``path`` is one of the allow-listed programs."""
        wanted = _identity(path)
        for entry in self.allowlist:
            if os.path.isabs(entry):
                resolved: str | None = os.path.normpath(entry)
            elif "/" not in entry:
                resolved = shutil.which(entry, path=self.search_path)
            else:
                resolved = None  # relative entries are refused by the settings; never match
            if resolved and os.path.isabs(resolved) and _identity(resolved) == wanted:
                return True
        return False


def _identity(path: str) -> tuple[str, str]:
    """A program as (real directory, file name): directory links resolved, the name kept."""
    directory, name = os.path.split(os.path.normpath(path))
    return os.path.realpath(directory), name


def check_env_name(name: str) -> str | None:
    """Why ``name`` cannot be set in a command's environment, or ``None``."""
    if not ENV_NAME.fullmatch(name):
        return f"{name!r} is not an environment variable name (letters, digits, '_')"
    upper = name.upper()
    if upper in FORBIDDEN_ENV_NAMES or upper.startswith(FORBIDDEN_ENV_PREFIXES):
        return (
            f"{name!r} may not be set: it makes programs load other code or is set by "
            "Flowyard itself"
        )
    return None


@dataclass(frozen=True, slots=True)
class Captured:
    """What a program wrote to one stream: the first bytes, and how many there were."""

    data: bytes
    total: int

    @property
    def truncated(self) -> bool:
        return self.total > len(self.data)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """How a command ended. ``exit_code`` is negative when a signal ended it."""

    program: str
    exit_code: int | None
    stdout: Captured
    stderr: Captured
    seconds: float
    timed_out: bool = False
    timeout: float | None = None


@dataclass
class _Stream:
    limit: int
    buffer: bytearray = field(default_factory=bytearray)
    total: int = 0

    async def drain(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(CHUNK):
            self.total += len(chunk)
            room = self.limit - len(self.buffer)
            if room > 0:
                self.buffer += chunk[:room]

    def captured(self) -> Captured:
        return Captured(bytes(self.buffer), self.total)


class CommandRunner:
    """Starts allow-listed programs for ``task`` nodes (``services["commands"]``)."""

    def __init__(
        self, policy: CommandPolicy, *, default_timeout: float, max_output_bytes: int
    ) -> None:
        self.policy = policy
        self.default_timeout = default_timeout
        self.max_output_bytes = max_output_bytes

    @classmethod
    def from_settings(cls, tasks: TasksSettings, search_path: str | None = None) -> CommandRunner:
        return cls(
            CommandPolicy.from_settings(tasks, search_path),
            default_timeout=parse_duration(tasks.command_timeout),
            max_output_bytes=tasks.max_output_bytes,
        )

    async def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        time_limit: float | None = None,
    ) -> CommandResult:
        """Run ``argv`` (program first) to its end or its timeout; never raises for the
        program's own failure. :class:`CommandRefused` when it may not or cannot start."""
        program = await asyncio.to_thread(self.policy.resolve, argv[0])
        limit = time_limit if time_limit is not None else self.default_timeout
        workdir = await asyncio.to_thread(tempfile.mkdtemp, prefix="flowyard-task-")
        try:
            environment = {
                "PATH": self.policy.search_path,
                "LANG": BASE_LANG,
                "HOME": workdir,
                "TMPDIR": workdir,
                **(env or {}),
            }
            return await self._run(program, [program, *argv[1:]], environment, workdir, limit)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _run(
        self, program: str, argv: list[str], env: dict[str, str], cwd: str, limit: float
    ) -> CommandResult:
        began = time.monotonic()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,  # its own process group: killed as a whole
                close_fds=True,
            )
        except (OSError, ValueError) as error:
            raise CommandRefused(f"cannot start {program}: {error}") from error
        assert process.stdout is not None
        assert process.stderr is not None
        out, err = _Stream(self.max_output_bytes), _Stream(self.max_output_bytes)
        readers = [
            asyncio.ensure_future(out.drain(process.stdout)),
            asyncio.ensure_future(err.drain(process.stderr)),
        ]
        # ``Process.wait()`` also waits for the pipes to close, which a background child
        # holding them could delay forever; the program's own exit is watched apart.
        finished = asyncio.ensure_future(process.wait())
        exited = asyncio.ensure_future(_exit_of(process.pid))
        timed_out = False
        try:
            async with asyncio.timeout(limit):
                await asyncio.wait({finished, exited}, return_when=asyncio.FIRST_COMPLETED)
                _kill_group(process.pid)  # whatever it left running in its group
                await finished
                await asyncio.gather(*readers)
        except TimeoutError:
            # Only the program's own run counts: if it had ended, a process that left its
            # group (setsid) was holding the pipes, and the result stands as it is.
            timed_out = not exited.done() and process.returncode is None
        finally:
            # On timeout, cancellation (node timeout, cancel, shutdown) or any error: the
            # whole group goes at once. Pipes still held by an escaped process are closed
            # on our side rather than waited for.
            if not finished.done():
                _kill_group(process.pid)
                _close_pipes(process)
            exited.cancel()
            await asyncio.gather(finished, exited, *readers, return_exceptions=True)
        return CommandResult(
            program=program,
            exit_code=process.returncode,
            stdout=out.captured(),
            stderr=err.captured(),
            seconds=time.monotonic() - began,
            timed_out=timed_out,
            timeout=limit,
        )


async def _exit_of(pid: int) -> None:
    """Return when process ``pid`` has exited (Linux pidfd); never, where unsupported."""
    loop = asyncio.get_running_loop()
    try:
        descriptor = os.pidfd_open(pid)
    except (AttributeError, OSError):  # already gone and reaped, or no pidfd here
        await loop.create_future()  # process.wait() then tells the end
        return
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(descriptor, readable)
    try:
        await done
    finally:
        loop.remove_reader(descriptor)
        os.close(descriptor)


def _close_pipes(process: asyncio.subprocess.Process) -> None:
    transport = getattr(process, "_transport", None)
    if transport is not None:
        transport.close()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def describe_exit(result: CommandResult) -> str:
    """``"exited with code 3"`` / ``"was killed by signal SIGSEGV"`` / ``"timed out …"``."""
    if result.timed_out:
        return (
            f"timed out after {format_duration(result.timeout or 0)} and was killed with its "
            "process group"
        )
    code = result.exit_code
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"
