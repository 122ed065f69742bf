"""``adamllm run CONFIG --executor ray``: the same run, its processes placed by Ray.

Ray here is a launcher, as torchrun is: it starts ``workers`` actors (anywhere in the cluster, each
with the CPUs and GPUs asked for), gives them the environment torchrun would (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` of rank 0's node), and each runs ``adamllm run``
with the same arguments in its own process. So every stage splits, writes its shards, merges,
resumes, quarantines and counts exactly as under torchrun (``adamllm.distributed``): the files are
those of a one-process run, byte for byte, and a rerun after a crash (a killed driver, node or
actor) resumes from whatever any worker finished. What it needs is what torchrun needs across
machines: every node sees the run folder and the data at the same paths (shared storage), and
the nodes reach rank 0's node on ``MASTER_PORT``.

Ray is optional (``pip install 'adamllm[ray]'``) and imported only here, only when asked for.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

RAY_EXTRA = "pip install 'adamllm[ray]' (Ray >= 2.40 with Ray Data)"


class RayExecutorError(RuntimeError):
    """The Ray executor could not run (Ray missing, no cluster, a worker lost)."""


@dataclass(frozen=True)
class RaySettings:
    workers: int = 2
    address: str | None = None  # None: a local cluster, started for this run and stopped after it
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0


def _ray():
    try:
        import ray
    except ImportError:
        raise RayExecutorError(f"--executor ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


class _Worker:
    """One process of the run (a Ray actor): runs ``adamllm run ARGS`` as rank ``rank``."""

    def node(self) -> str:
        import ray

        return ray.util.get_node_ip_address()

    def free_port(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("", 0))
            return sock.getsockname()[1]

    def run(self, rank: int, size: int, master: str, port: int, args: Sequence[str], gpus: float) -> tuple[int, str]:
        """``(exit code, the error line or "")`` of ``adamllm run ARGS`` in this process."""
        import click

        os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), MASTER_ADDR=master, MASTER_PORT=str(port),
                          # Ray shows an actor only the GPUs it was given: its own is always device 0
                          LOCAL_RANK="0" if gpus else str(rank), LOCAL_WORLD_SIZE="1" if gpus else str(size))
        if not gpus:
            os.environ.setdefault("ACCELERATE_USE_CPU", "1")
        from .cli import cli

        try:
            cli.main(args=["run", *args], prog_name="adamllm", standalone_mode=False)
        except click.ClickException as exc:
            return exc.exit_code, exc.format_message()
        except click.exceptions.Exit as exc:
            return exc.exit_code, ""
        except click.Abort:
            return 1, "aborted"
        return 0, ""


def run_on_ray(args: Sequence[str], settings: RaySettings, echo=print) -> None:
    """Run ``adamllm run ARGS`` on ``settings.workers`` Ray actors; raises ``RayExecutorError``
    (naming the first failing rank's error line) unless every worker exits 0."""
    ray = _ray()
    local = settings.address is None
    if not ray.is_initialized():
        options = {"include_dashboard": False, "logging_level": "WARNING"}
        if local:
            need = settings.workers * settings.cpus_per_worker
            options["num_cpus"] = max(int(need + 0.999), os.cpu_count() or 1)
        else:
            options["address"] = settings.address
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayExecutorError(f"cannot start or reach the Ray cluster ({settings.address or 'local'}): "
                                   f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    try:
        actor = ray.remote(num_cpus=settings.cpus_per_worker, num_gpus=settings.gpus_per_worker or None,
                           max_restarts=0)(_Worker)
        workers = [actor.remote() for _ in range(settings.workers)]
        master = ray.get(workers[0].node.remote())
        port = ray.get(workers[0].free_port.remote())
        echo(f"[ray] {settings.workers} workers ({settings.cpus_per_worker:g} CPU"
             + (f", {settings.gpus_per_worker:g} GPU" if settings.gpus_per_worker else "")
             + f" each) on {'a local cluster' if local else settings.address}; rank 0 at {master}:{port}")
        pending = {worker.run.remote(rank, settings.workers, master, port, list(args), settings.gpus_per_worker): rank
                   for rank, worker in enumerate(workers)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            rank = pending.pop(done[0])
            try:
                code, message = ray.get(done[0])
            except ray.exceptions.RayError as exc:  # the actor died (killed, out of memory, node lost)
                code, message = 1, f"worker lost: {str(exc).splitlines()[0]}"
            if code:
                for worker in workers:  # the others would wait for it at the next barrier forever
                    ray.kill(worker)
                raise RayExecutorError(f"rank {rank} of {settings.workers}: {message or f'exit code {code}'}")
    finally:
        if local:
            ray.shutdown()


__all__ = ["RAY_EXTRA", "RayExecutorError", "RaySettings", "run_on_ray"]
