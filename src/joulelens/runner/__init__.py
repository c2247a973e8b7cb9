"""Running measurements: one configuration (``run_one``) or a grid (``run_sweep``).

Sits above engines, workloads, meters, measurement and the store; below the CLI.
"""

from joulelens.runner.config import RunConfig, default_num_requests
from joulelens.runner.execute import run_one
from joulelens.runner.protocol import RunObserver

__all__ = ["RunConfig", "RunObserver", "default_num_requests", "run_one"]
