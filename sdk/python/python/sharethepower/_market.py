"""``Market`` and ``Job``: the consumer flow of ``stp job post --wait --output`` and the
provider basics, synchronous, with ``*_async`` variants for asyncio code."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Sequence, Union

import numpy as np

from . import _native
from ._progress import Progress
from .kernels import KernelInput
from .models import split_outputs

Amount = Union[str, int, float, Decimal]
"""An amount in ETH (or the market's token) units: ``"0.01"``, ``1``, ``Decimal("0.5")``."""


def _amount(value: Amount) -> str:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _shaped(kernel: str, input: bytes, data: bytes) -> np.ndarray | tuple[np.ndarray, ...] | bytes:
    """The output ``data`` of ``kernel`` on ``input`` as NumPy: a tuple of arrays for a model
    job, an array for a built-in kernel, the bytes themselves for a custom kernel."""
    model = _native.model_output_layout(kernel, input)
    if model is not None:
        return split_outputs(data, *model)
    layout = _native.output_layout(kernel, input)
    if layout is None:
        return data
    dtype, shape = layout
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


@dataclass(frozen=True)
class BatchResult:
    """A finished batch: its id (the job id of its first chunk), the aggregate output and
    its record (chunks, attempts, result hashes, merkle root), as ``stp batch status --json``
    shows it."""

    id: int
    output: np.ndarray | tuple[np.ndarray, ...] | bytes
    record: dict[str, Any] = field(repr=False)


class Job:
    """One job on the market: follow it, fetch its checked output."""

    def __init__(self, native: _native.Job) -> None:
        self._job = native

    @property
    def id(self) -> int:
        """The job id."""
        return self._job.id

    @property
    def kernel(self) -> str:
        """The kernel's name (``custom`` for a custom kernel)."""
        return self._job.kernel

    def status(self) -> dict[str, Any]:
        """Where the job stands: what ``stp job status --json`` prints (phase, slots,
        reveals, outcome, deadlines; amounts in wei as strings)."""
        status: dict[str, Any] = json.loads(self._job.status_json())
        return status

    def wait(self, progress: bool = True, poll_secs: float = 0.5) -> str:
        """Waits until the job is settled, finalizing it once a deadline allows; returns the
        outcome: ``"completed"``, ``"no_quorum"`` or ``"unfilled"``. With ``progress`` a
        one-line display on stderr follows it (terminal and Jupyter)."""
        bar = Progress() if progress else None
        outcome = self._job.wait(progress=bar, poll_secs=poll_secs)
        if bar is not None:
            bar.close(f"job {self.id}: {outcome}")
        return outcome

    def output(
        self, check: bool = True, progress: bool = False
    ) -> np.ndarray | tuple[np.ndarray, ...] | bytes:
        """The agreed output, waiting for the settlement first: fetched from the winning
        providers, its hash checked against the on-chain result and, unless ``check`` is
        false, checked against the input (Freivalds for the matmuls, sampled recomputation
        for sha256-batch and mandelbrot, sampled samples for a model). A NumPy array of the
        kernel's dtype and shape for built-in kernels, a tuple of arrays (one per output, of
        shape ``(batch, ...)``) for a model job, else bytes. Raises ``NoOutput`` if the job ended without one and
        ``OutputCheckFailed`` if the agreed output is wrong."""
        bar = Progress() if progress else None
        data = self._job.fetch(check=check, progress=bar)
        if bar is not None:
            bar.close(f"job {self.id}: output fetched and verified")
        if self._job.input is None:
            return data
        return _shaped(self._job.kernel_id, self._job.input, data)

    @property
    def receipt(self) -> dict[str, Any] | None:
        """What was checked about the output (``None`` before ``output()``): the result hash
        and the replicas that agreed on it, the hash and job-identity checks, and the
        consumer's own check (method, rounds or samples, false-accept bound, outcome)."""
        raw = self._job.receipt_json
        return None if raw is None else json.loads(raw)

    async def wait_async(self, progress: bool = False, poll_secs: float = 0.5) -> str:
        """``wait`` for asyncio code (runs in a worker thread; the GIL is released)."""
        return await asyncio.to_thread(self.wait, progress, poll_secs)

    async def output_async(self, check: bool = True) -> np.ndarray | tuple[np.ndarray, ...] | bytes:
        """``output`` for asyncio code (runs in a worker thread; the GIL is released)."""
        return await asyncio.to_thread(self.output, check)

    def __repr__(self) -> str:
        return f"Job(id={self.id}, kernel={self.kernel!r})"


class Market:
    """A connection to one ShareThePower market as one account."""

    def __init__(self, native: _native.Market) -> None:
        self._m = native

    @classmethod
    def connect(
        cls,
        rpc_url: str | None = None,
        deployment: str | os.PathLike[str] | None = None,
        private_key: str | None = None,
        *,
        keystore: str | os.PathLike[str] | None = None,
        password: str | None = None,
        bootstrap: Sequence[str] | None = None,
        consumer_dir: str | os.PathLike[str] | None = None,
        listen: Sequence[str] | None = None,
    ) -> "Market":
        """Connects as the CLI does: ``rpc_url`` else ``ETH_RPC_URL`` else
        ``http://127.0.0.1:8545``; ``deployment`` else ``STP_DEPLOYMENT`` else
        ``deployments/<chainId>.json``; the wallet from ``private_key`` (``STP_PRIVATE_KEY``)
        or ``keystore`` + ``password`` (``STP_KEYSTORE``, ``STP_KEYSTORE_PASSWORD``); without
        one the connection can only read. ``bootstrap``: libp2p addresses
        (``/ip4/…/tcp/…/p2p/<peer id>``) of provider nodes, to find the winners of a job;
        ``consumer_dir`` (``STP_CONSUMER_DIR``, default ``.stp/consumer``) keeps this
        consumer's libp2p identity and the blobs it serves. Raises ``RpcUnavailable`` if
        the chain cannot be reached."""
        native = _native.Market.connect(
            rpc_url=rpc_url,
            deployment=None if deployment is None else os.fspath(deployment),
            private_key=private_key,
            keystore=None if keystore is None else os.fspath(keystore),
            password=password,
            bootstrap=None if bootstrap is None else list(bootstrap),
            consumer_dir=None if consumer_dir is None else os.fspath(consumer_dir),
            listen=None if listen is None else list(listen),
        )
        return cls(native)

    @classmethod
    async def connect_async(cls, *args: Any, **kwargs: Any) -> "Market":
        """``connect`` for asyncio code."""
        return await asyncio.to_thread(cls.connect, *args, **kwargs)

    @property
    def account(self) -> str:
        """This connection's account (0x address)."""
        return self._m.account

    @property
    def chain_id(self) -> int:
        """The chain id."""
        return self._m.chain_id

    @property
    def escrow(self) -> str:
        """The market's JobEscrow address."""
        return self._m.escrow

    def post(
        self,
        kernel: KernelInput | str,
        input: bytes | None = None,
        *,
        replicas: int = 1,
        bounty: Amount = "0.01",
        collateral: Amount = "0",
        min_reputation: int = 0,
        commit_secs: int | None = None,
        reveal_secs: int | None = None,
        max_output: int | None = None,
        force: bool = False,
    ) -> Job:
        """Posts a job and serves its input to the drawn providers over libp2p.

        ``kernel`` is a ``KernelInput`` (``kernels.matmul_u32(a, b)``, …) or a kernel name /
        64-hex id with ``input`` bytes. ``replicas`` independent providers compute it and a
        strict majority must agree; ``bounty`` is split among the winners and
        ``collateral`` is what each replica locks (amounts in ETH units). The order is
        checked as ``stp job post`` checks it before anything is sent (``ValueError`` for a
        bad input, ``InsufficientFunds`` for a short wallet)."""
        if isinstance(kernel, KernelInput):
            if input is not None:
                raise ValueError("pass either a KernelInput or a kernel name with input bytes, not both")
            name, data = kernel.kernel, kernel.data
        else:
            if input is None:
                raise ValueError(f"kernel {kernel!r} needs its input bytes")
            name, data = kernel, bytes(input)
        native = self._m.post(
            name,
            data,
            replicas=replicas,
            bounty=_amount(bounty),
            collateral=_amount(collateral),
            min_reputation=min_reputation,
            commit_secs=commit_secs,
            reveal_secs=reveal_secs,
            max_output=max_output,
            force=force,
        )
        return Job(native)

    def run_batch(
        self,
        work: KernelInput,
        *,
        chunks: int | None = None,
        chunk_rows: int | None = None,
        replicas: int = 1,
        bounty: Amount = "0.001",
        collateral: Amount = "0",
        min_reputation: int = 0,
        commit_secs: int | None = None,
        reveal_secs: int | None = None,
        max_attempts: int = 3,
        check: bool = True,
        poll_secs: float = 0.5,
        force: bool = False,
    ) -> "BatchResult":
        """Runs a whole workload as a batch of chunk jobs, as ``stp batch post --wait`` does,
        and returns its aggregate output.

        ``work`` is a model's job (``model.job(x)``: split by samples) or a built-in
        kernel's input (matmuls by rows of A, sha256-batch by messages, mandelbrot by
        strips). Give ``chunks`` (how many) or ``chunk_rows`` (units per chunk). Each chunk
        is an ordinary job with these terms (``bounty`` and ``collateral`` per chunk); a
        chunk that ends unfilled, without quorum or failing its check is posted again, up to
        ``max_attempts`` postings. The data every chunk needs (the model, matmul's B)
        travels to each provider once, by hash. The output has the shape one job over the
        whole input would give: a tuple of arrays for a model, an array for a built-in."""
        batch_id, data, record = self._m.run_batch(
            work.kernel,
            work.data,
            chunks=chunks,
            chunk_rows=chunk_rows,
            replicas=replicas,
            bounty=_amount(bounty),
            collateral=_amount(collateral),
            min_reputation=min_reputation,
            commit_secs=commit_secs,
            reveal_secs=reveal_secs,
            max_attempts=max_attempts,
            check=check,
            poll_secs=poll_secs,
            force=force,
        )
        return BatchResult(batch_id, _shaped(work.kernel, work.data, data), json.loads(record))

    async def post_async(self, *args: Any, **kwargs: Any) -> Job:
        """``post`` for asyncio code."""
        return await asyncio.to_thread(self.post, *args, **kwargs)

    def job(self, job_id: int, input: bytes | KernelInput | None = None) -> Job:
        """Job ``job_id`` of this market (``JobNotFound`` if it was never posted). Give its
        ``input`` to have ``output()`` checked against it and shaped as an array."""
        data = input.data if isinstance(input, KernelInput) else input
        return Job(self._m.job(job_id, None if data is None else bytes(data)))

    def stake(self, amount: Amount) -> str:
        """Stakes ``amount`` as a provider; returns the transaction hash."""
        return self._m.stake(_amount(amount))

    def unstake(self, amount: Amount) -> str:
        """Takes ``amount`` of free stake out to the wallet; returns the transaction hash."""
        return self._m.unstake(_amount(amount))

    def withdraw(self) -> tuple[str, Decimal]:
        """Withdraws the credited balance (payouts, refunds); returns (tx hash, amount)."""
        return self._m.withdraw()

    def balance(self, address: str | None = None) -> dict[str, Decimal]:
        """``{"credited": …, "wallet": …}`` of ``address`` (default: this account)."""
        return self._m.balance(address)

    def provider_status(self, address: str | None = None) -> dict[str, Any]:
        """A provider's stake (staked, locked, free, minimum) and reputation (completed,
        slashed, missed, score); default: this account."""
        return self._m.provider_status(address)

    def burned(self) -> Decimal:
        """Stake burned by slashes so far."""
        return self._m.burned()

    def __repr__(self) -> str:
        return repr(self._m)
