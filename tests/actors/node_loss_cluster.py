"""A two-node Ray cluster on this machine for the node-loss test, in its own process (one Ray
per process): a head node for the scheduler and the workers, and a node that holds only the
Segmenter (custom resource ``seg_node``) and so the chunks it decodes.

    NODE_LOSS_DATABASE_URL=postgresql://… python -m tests.actors.node_loss_cluster <settings.json>

(the settings file carries no secrets: the database URL comes from the environment).

Prints ``ready`` once the scheduler runs. Reads commands from stdin: ``pause`` stops the CPU
workers' processes (busy workers: work queues for them); ``kill`` removes the Segmenter's node at
once (its processes and object store die, as in a machine failure), adds a replacement node
(what an autoscaler does) and resumes the workers, then prints ``killed``; ``stop`` stops the
scheduler and the cluster, then exits.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import ray  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from tests.actors.conftest import named_actor  # noqa: E402
from trendflow.actors.scheduler import start_scheduler  # noqa: E402
from trendflow.settings import Settings  # noqa: E402

NODE = {"num_cpus": 0, "resources": {"seg_node": 1}, "object_store_memory": 128 * 2**20}


def main() -> None:
    settings = Settings.model_validate_json(Path(sys.argv[1]).read_text())
    settings = settings.model_copy(update={"database": settings.database.model_copy(
        update={"url": SecretStr(os.environ["NODE_LOSS_DATABASE_URL"])})})
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "resources": {"head_node": 1}, "object_store_memory": 256 * 2**20,
        "include_dashboard": False,
        # Notice a dead node within a few seconds (Ray's default takes tens of seconds), with
        # room for a slow answer from a healthy node on a busy machine.
        "_system_config": {"free_objects_period_milliseconds": 50,
                           "health_check_period_ms": 500, "health_check_failure_threshold": 5,
                           "health_check_timeout_ms": 1000},
    })
    try:
        segmenter_node = cluster.add_node(**NODE)
        ray.init(address=cluster.address, namespace="trendflow-node-loss", log_to_driver=False)
        scheduler = start_scheduler(settings)
        paused: list[int] = []
        print("ready", flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "pause":
                # The CPU workers stay busy (stopped): what the run sends them piles up, and
                # its inputs (chunks, the audio track) stay only in the Segmenter node's store.
                paused = [ray.get(named_actor(n, settings).pid.remote())
                          for n in ray.get(scheduler.describe.remote())["actors"]["cpu"]]
                for pid in paused:
                    os.kill(pid, signal.SIGSTOP)
                print("paused", flush=True)
            elif command == "kill":
                try:
                    cluster.remove_node(segmenter_node, allow_graceful=False)
                    segmenter_node = cluster.add_node(**NODE)
                finally:
                    for pid in paused:
                        os.kill(pid, signal.SIGCONT)
                    paused = []
                print("killed", flush=True)
            elif command == "stop":
                ray.get(scheduler.stop.remote(), timeout=30)
                ray.kill(scheduler, no_restart=True)
                break
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
