"""The SDK against a real devnet: NumPy in, checked NumPy out, a liar slashed, typed errors."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import threading
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import sharethepower as stp
from conftest import LIAR, STAKES, Devnet

CONSUMER = 6


@pytest.fixture(scope="module")
def consumer(devnet: Devnet) -> stp.Market:
    return devnet.market(CONSUMER)


@pytest.fixture(scope="module")
def matmul_job(devnet: Devnet, consumer: stp.Market):
    """One matmul-u32 job with 3 replicas, the liar among them, waited for and fetched."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**32, size=(40, 24), dtype=np.uint32)
    b = rng.integers(0, 2**32, size=(24, 33), dtype=np.uint32)
    job = consumer.post(stp.kernels.matmul_u32(a, b), replicas=3, bounty="0.03", collateral="0.1")
    assert job.wait(progress=True) == "completed"
    return job, a, b, job.output()


def test_matmul_u32_with_three_replicas_and_a_liar_equals_numpy(matmul_job):
    job, a, b, c = matmul_job
    expected = ((a.astype(np.uint64) @ b) % 2**32).astype(np.uint32)
    assert c.dtype == np.uint32 and c.shape == (40, 33)
    assert np.array_equal(c, expected)
    receipt = job.receipt
    assert receipt["outcome"] == "completed" and receipt["hash_verified"]
    assert receipt["check"]["outcome"] == {"result": "pass"}, receipt
    assert receipt["check"]["method"] == "freivalds", receipt
    assert receipt["quorum"] == 2 and len(receipt["agreeing_replicas"]) >= 2


def test_the_liar_is_slashed(devnet: Devnet, consumer: stp.Market, matmul_job):
    job, *_ = matmul_job
    liar = devnet.addresses[LIAR]
    assert [a.lower() for a in job.receipt["dissenting_replicas"]] == [liar.lower()]
    status = consumer.provider_status(liar)
    assert status["slashed"] == 1 and status["completed"] == 0
    assert status["staked"] < Decimal(STAKES[LIAR])
    assert consumer.burned() > 0
    honest = consumer.provider_status(devnet.addresses[1])
    assert honest["slashed"] == 0


def test_status_of_a_settled_job(matmul_job):
    job, *_ = matmul_job
    status = job.status()
    assert status["job_id"] == job.id and status["outcome"] == "completed"
    assert status["replicas"] == 3


def test_an_honest_provider_withdraws_its_payout(devnet: Devnet, matmul_job):
    job, *_ = matmul_job
    winner = next(
        i for i in (1, 2) if devnet.addresses[i].lower() in [a.lower() for a in job.receipt["agreeing_replicas"]]
    )
    provider = devnet.market(winner)
    before = provider.balance()
    assert before["credited"] > 0
    tx, amount = provider.withdraw()
    assert tx.startswith("0x") and amount == before["credited"]
    after = provider.balance()
    assert after["credited"] == 0 and after["wallet"] > before["wallet"]


def test_sha256_batch_equals_hashlib(consumer: stp.Market, matmul_job):
    rng = np.random.default_rng(8)
    messages = [rng.bytes(55) for _ in range(300)]
    job = consumer.post(stp.kernels.sha256_batch(messages), replicas=3, bounty="0.03", collateral="0.1")
    digests = job.output(progress=True)
    assert digests.dtype == np.uint8 and digests.shape == (300, 32)
    for row, m in zip(digests, messages):
        assert row.tobytes() == hashlib.sha256(m).digest()
    assert job.receipt["check"]["outcome"] == {"result": "pass"}


DIGITS = Path(__file__).resolve().parents[3] / "models" / "digits"


def test_the_digits_model_with_three_replicas_and_a_liar_equals_the_cpu_run(devnet: Devnet, consumer: stp.Market, matmul_job):
    model = stp.Model.from_onnx(DIGITS / "digits_int8.onnx")
    x = np.fromfile(DIGITS / "heldout_input.bin", dtype=np.int8).reshape(-1, 64)[:90]
    slashed = consumer.provider_status(devnet.addresses[LIAR])["slashed"]
    job = consumer.post(model.job(x), replicas=3, bounty="0.03", collateral="0.1")
    assert job.wait(progress=True) == "completed"
    outputs = job.output()
    expected = model.run(x)
    assert len(outputs) == len(expected)
    assert all(o.dtype == e.dtype and np.array_equal(o, e) for o, e in zip(outputs, expected))
    receipt = job.receipt
    assert receipt["check"]["outcome"] == {"result": "pass"}, receipt
    assert receipt["check"]["method"] == "sampled", receipt
    if devnet.addresses[LIAR].lower() in [a.lower() for a in receipt["dissenting_replicas"]]:
        assert consumer.provider_status(devnet.addresses[LIAR])["slashed"] == slashed + 1


def test_the_digits_model_as_a_batch_of_chunks_equals_the_cpu_run(devnet: Devnet, consumer: stp.Market, matmul_job):
    model = stp.Model.from_onnx(DIGITS / "digits_int8.onnx")
    x = np.fromfile(DIGITS / "heldout_input.bin", dtype=np.int8).reshape(-1, 64)[:120]
    result = consumer.run_batch(model.job(x), chunks=4, replicas=3, bounty="0.03", collateral="0.1")
    expected = model.run(x)
    assert all(np.array_equal(o, e) for o, e in zip(result.output, expected))
    assert result.output[0].shape == (120, 10) and result.output[1].shape == (120, 1)
    chunks = result.record["chunks"]
    assert len(chunks) == 4 and all(c["phase"] == "verified" for c in chunks)
    assert result.record["kernel"] == "model" and result.id == chunks[0]["attempts"][0]["job_id"]
    with pytest.raises(ValueError, match="exactly one of chunks"):
        consumer.run_batch(model.job(x), chunks=2, chunk_rows=10)


def test_wrong_dtype_or_shape_is_a_value_error_before_anything_is_sent(consumer: stp.Market):
    before = consumer.balance()
    a = np.ones((4, 3), dtype=np.uint32)
    with pytest.raises(ValueError, match="dtype float64"):
        consumer.post(stp.kernels.matmul_u32(a.astype(np.float64), a.T))
    with pytest.raises(ValueError, match="columns must equal"):
        consumer.post(stp.kernels.matmul_u32(a, a))
    with pytest.raises(ValueError, match="2-D"):
        stp.kernels.matmul_u32(np.ones(3, dtype=np.uint32), a)
    with pytest.raises(ValueError, match="same length"):
        stp.kernels.sha256_batch([b"ab", b"abc"])
    # Raw bytes that do not fit the kernel are refused by the Rust validator.
    with pytest.raises(ValueError, match="truncated"):
        consumer.post("matmul-u32", b"\x02\x00\x00\x00" * 3)
    with pytest.raises(ValueError, match="replicas must be at least 1"):
        consumer.post(stp.kernels.sha256_batch([b"x"]), replicas=0)
    assert consumer.balance() == before


def test_a_dead_rpc_url_is_rpc_unavailable(devnet: Devnet):
    with pytest.raises(stp.RpcUnavailable, match="cannot reach the chain at http://127.0.0.1:9"):
        stp.Market.connect(rpc_url="http://127.0.0.1:9")
    with pytest.raises(stp.RpcUnavailable, match="is the node at --rpc-url"):
        stp.Market.connect(rpc_url="http://127.0.0.1:9", deployment=devnet.deployment)


def test_contract_and_wallet_errors_are_typed(devnet: Devnet, consumer: stp.Market):
    with pytest.raises(stp.StakeTooLow) as e:
        consumer.unstake("5")
    assert isinstance(e.value, stp.ContractError) and "unstake reverted" in str(e.value)
    with pytest.raises(stp.JobNotFound, match="job 999 was never posted"):
        consumer.job(999)
    with pytest.raises(stp.InsufficientFunds, match="holds .* ETH, but the bounty of 1000000 ETH"):
        consumer.post(stp.kernels.sha256_batch([b"x"]), bounty="1000000")
    with pytest.raises(ValueError, match="amounts cannot be negative"):
        consumer.stake("-1")
    reader = stp.Market.connect(rpc_url=devnet.rpc_url, deployment=devnet.deployment)
    assert reader.provider_status(devnet.addresses[1])["staked"] > 0
    with pytest.raises(stp.StpError, match="this call sends transactions: pass private_key="):
        reader.stake("1")


def test_asyncio_variants_run_a_matmul_i8(consumer: stp.Market, matmul_job):
    rng = np.random.default_rng(9)
    a = rng.integers(-128, 128, size=(17, 40), dtype=np.int8)
    b = rng.integers(-128, 128, size=(40, 9), dtype=np.int8)

    async def run() -> np.ndarray:
        job = await consumer.post_async(stp.kernels.matmul_i8(a, b), replicas=3, bounty="0.03")
        assert await job.wait_async() == "completed"
        return await job.output_async()

    c = asyncio.run(run())
    assert c.dtype == np.int32 and c.shape == (17, 9)
    assert np.array_equal(c, a.astype(np.int32) @ b.astype(np.int32))


def test_a_job_nobody_may_take_ends_unfilled_and_has_no_output(consumer: stp.Market):
    before = consumer.balance()["credited"]
    # No provider has a reputation of 1000: nobody takes it; once the commit window
    # closes, wait() finalizes it and the bounty is credited back.
    job = consumer.post(
        stp.kernels.sha256_batch([b"abc"]), bounty="0.01", min_reputation=1000, commit_secs=10, reveal_secs=10
    )
    # Ctrl-C while waiting raises KeyboardInterrupt and leaves the job on-chain.
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        job.wait(progress=False)
    assert time.monotonic() - started < 5
    assert job.wait(progress=False) == "unfilled"
    with pytest.raises(stp.NoOutput, match=f"job {job.id} ended Unfilled: there is no agreed output"):
        job.output()
    assert consumer.balance()["credited"] == before + Decimal("0.01")
