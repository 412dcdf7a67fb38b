"""Type stubs of the native module (PyO3 over stp-sdk / stp-node)."""

from decimal import Decimal
from typing import Callable, Optional

__version__: str

class StpError(Exception):
    """Base of every ShareThePower error; its message is what the `stp` CLI prints."""

class RpcUnavailable(StpError):
    """The chain's JSON-RPC endpoint cannot be reached or failed to answer."""

class InsufficientFunds(StpError):
    """The wallet cannot pay the amount plus gas; nothing was sent."""

class ContractError(StpError):
    """The market contract rejected the call (a decoded custom error)."""

class StakeTooLow(ContractError):
    """The stake is below the market's minimum, or less is free than the call needs."""

class JobNotFound(StpError):
    """No such job on this market."""

class NoOutput(StpError):
    """The job settled without an agreed output, or is not settled yet."""

class OutputCheckFailed(StpError):
    """The agreed output fails the consumer's own check against the input."""

class DeploymentError(StpError):
    """The deployment file is missing or malformed, or is for another chain."""

ProgressFn = Callable[[str, str, int, int, int], None]

class Market:
    @staticmethod
    def connect(
        rpc_url: Optional[str] = None,
        deployment: Optional[str] = None,
        private_key: Optional[str] = None,
        keystore: Optional[str] = None,
        password: Optional[str] = None,
        bootstrap: Optional[list[str]] = None,
        consumer_dir: Optional[str] = None,
        listen: Optional[list[str]] = None,
    ) -> Market: ...
    @property
    def account(self) -> str: ...
    @property
    def chain_id(self) -> int: ...
    @property
    def escrow(self) -> str: ...
    @property
    def is_native(self) -> bool: ...
    def post(
        self,
        kernel: str,
        input: bytes,
        *,
        replicas: int = 1,
        bounty: str = "0.01",
        collateral: str = "0",
        min_reputation: int = 0,
        commit_secs: Optional[int] = None,
        reveal_secs: Optional[int] = None,
        max_output: Optional[int] = None,
        force: bool = False,
    ) -> Job: ...
    def run_batch(
        self,
        kernel: str,
        input: bytes,
        *,
        chunks: Optional[int] = None,
        chunk_rows: Optional[int] = None,
        replicas: int = 1,
        bounty: str = "0.001",
        collateral: str = "0",
        min_reputation: int = 0,
        commit_secs: Optional[int] = None,
        reveal_secs: Optional[int] = None,
        max_attempts: int = 3,
        check: bool = True,
        poll_secs: float = 0.5,
        force: bool = False,
    ) -> tuple[int, bytes, str]: ...
    def job(self, job_id: int, input: Optional[bytes] = None) -> Job: ...
    def stake(self, amount: str) -> str: ...
    def unstake(self, amount: str) -> str: ...
    def withdraw(self) -> tuple[str, Decimal]: ...
    def balance(self, address: Optional[str] = None) -> dict[str, Decimal]: ...
    def provider_status(self, address: Optional[str] = None) -> dict[str, object]: ...
    def burned(self) -> Decimal: ...

class Job:
    @property
    def id(self) -> int: ...
    @property
    def kernel(self) -> str: ...
    @property
    def kernel_id(self) -> str: ...
    @property
    def input(self) -> Optional[bytes]: ...
    @property
    def receipt_json(self) -> Optional[str]: ...
    def status_json(self) -> str: ...
    def wait(self, progress: Optional[ProgressFn] = None, poll_secs: float = 0.5) -> str: ...
    def fetch(
        self, check: bool = True, progress: Optional[ProgressFn] = None, poll_secs: float = 0.5
    ) -> bytes: ...

def encode_matmul_u32(m: int, k: int, n: int, a: bytes, b: bytes) -> bytes: ...
def encode_matmul_i8(m: int, k: int, n: int, a: bytes, b: bytes) -> bytes: ...
def encode_sha256_batch(messages: list[bytes]) -> bytes: ...
def encode_mandelbrot(
    width: int, height: int, cx: float, cy: float, span: float, max_iter: int
) -> bytes: ...
def output_layout(kernel: str, input: bytes) -> Optional[tuple[str, list[int]]]: ...
def builtin_kernels() -> list[tuple[str, str, str, str, str]]: ...
def kernel_id(kernel: str) -> str: ...
def model_info(file: bytes) -> tuple[str, str, list[int], list[tuple[str, list[int]]]]: ...
def encode_model_job(file: bytes, samples: bytes) -> bytes: ...
def model_output_layout(
    kernel: str, input: bytes
) -> Optional[tuple[int, list[tuple[str, list[int]]]]]: ...
def run_model_cpu(file: bytes, samples: bytes) -> bytes: ...
def import_onnx(onnx: bytes) -> tuple[bytes, float]: ...
