"""ShareThePower from Python: post GPU compute jobs on the market and get checked outputs.

Everything that encodes, signs, hashes, verifies or moves bytes is the project's Rust code
(``stp_sdk`` and ``stp_node``, the same the ``stp`` CLI runs), reached through the native
module ``sharethepower._native``; this package adds NumPy conversions and a progress display.

>>> import numpy as np, sharethepower as stp                     # doctest: +SKIP
>>> market = stp.Market.connect(private_key="0x...")             # doctest: +SKIP
>>> a = np.arange(6, dtype=np.uint32).reshape(2, 3)              # doctest: +SKIP
>>> job = market.post(stp.kernels.matmul_u32(a, a.T), replicas=3, bounty="0.03")  # doctest: +SKIP
>>> job.wait(progress=True); c = job.output()                    # doctest: +SKIP
"""

from . import kernels, models
from ._market import BatchResult, Job, Market
from ._native import (
    ContractError,
    DeploymentError,
    InsufficientFunds,
    JobNotFound,
    NoOutput,
    OutputCheckFailed,
    RpcUnavailable,
    StakeTooLow,
    StpError,
    __version__,
)
from .kernels import KernelInput
from .models import Model

__all__ = [
    "BatchResult",
    "ContractError",
    "DeploymentError",
    "InsufficientFunds",
    "Job",
    "JobNotFound",
    "KernelInput",
    "Market",
    "Model",
    "NoOutput",
    "OutputCheckFailed",
    "RpcUnavailable",
    "StakeTooLow",
    "StpError",
    "__version__",
    "kernels",
    "models",
]
