// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IJobEscrow} from "./interfaces/IJobEscrow.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {StakeManager} from "./StakeManager.sol";

/// @title JobEscrow
/// @notice Jobs, k-of-n commit-reveal, settlement and pull payouts of one ShareThePower
/// market. Deploying it creates the market's StakeManager, whose only privileged caller it
/// is; there is no owner and no admin function.
/// @dev Storage per job is one slot (24-byte spec hash prefix + claimed/committed/revealed
/// counters), per replica one slot (8-bit status + 248 bits of the commitment or of
/// keccak256(resultHash)). Both are deleted when the job settles: events are the history.
/// Credited balances are stored as `amount + 1` once an account's slot is in use, so the
/// slot never returns to zero and later credits do not pay for a fresh slot.
contract JobEscrow is IJobEscrow, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Largest `maxReplicas` a market can be deployed with.
    uint256 public constant MAX_REPLICAS_LIMIT = 16;
    /// @notice Largest `inputLocation` of a job spec, in bytes.
    uint256 public constant MAX_INPUT_LOCATION = 256;

    uint256 private constant BPS = 10_000;
    uint256 private constant STATUS_MASK = 0xff;

    struct Job {
        bytes24 specHash; // first 24 bytes of keccak256(abi.encode(spec)); zero: no live job
        uint8 claimed;
        uint8 committed;
        uint8 revealed;
    }

    IStakeManager private immutable _stakeManager;
    address private immutable _asset;
    uint256 private immutable _slashBps;
    uint256 private immutable _maxReplicas;

    uint256 private _nextJobId = 1;
    mapping(uint256 jobId => Job) private _jobs;
    /// @dev (payload << 8) | ReplicaStatus, see `_pack`.
    mapping(uint256 jobId => mapping(address provider => uint256)) private _replicas;
    /// @dev 0: never used; otherwise withdrawable balance + 1.
    mapping(address account => uint256) private _credits;

    /// @param asset_ address(0) for native ETH, else the ERC-20 for stakes, bounties and
    /// collateral. @param slashBps_ 1..10_000. @param unbondingDelay_ seconds, 1..365 days.
    /// @param minStake_ > 0. @param maxReplicas_ 1..MAX_REPLICAS_LIMIT.
    constructor(
        address asset_,
        uint256 slashBps_,
        uint256 unbondingDelay_,
        uint256 minStake_,
        uint256 maxReplicas_
    ) {
        if (maxReplicas_ == 0 || maxReplicas_ > MAX_REPLICAS_LIMIT) {
            revert EscrowParameterOutOfRange("maxReplicas", maxReplicas_);
        }
        _stakeManager = new StakeManager(asset_, slashBps_, unbondingDelay_, minStake_);
        _asset = asset_;
        _slashBps = slashBps_;
        _maxReplicas = maxReplicas_;
    }

    /// @notice Accepts slashed ETH from the stake manager only.
    receive() external payable {
        if (msg.sender != address(_stakeManager)) revert EscrowUnexpectedEther(msg.sender);
    }

    /// @inheritdoc IJobEscrow
    function postJob(JobSpec calldata spec) external payable nonReentrant returns (uint256 jobId) {
        _validate(spec);
        uint256 expectedValue = _asset == address(0) ? spec.bounty : 0;
        if (msg.value != expectedValue) revert EscrowWrongValue(msg.value, expectedValue);
        jobId = _nextJobId;
        _nextJobId = jobId + 1;
        _jobs[jobId].specHash = bytes24(_hash(spec));
        emit JobPosted(jobId, msg.sender, spec);
        if (_asset != address(0)) {
            IERC20(_asset).safeTransferFrom(msg.sender, address(this), spec.bounty);
        }
    }

    /// @inheritdoc IJobEscrow
    function claim(uint256 jobId, JobSpec calldata spec) external nonReentrant {
        Job memory job = _load(jobId, spec);
        if (block.timestamp > spec.claimDeadline) {
            revert EscrowClaimClosed(jobId, spec.claimDeadline);
        }
        if (job.claimed >= spec.replicas) revert EscrowJobFull(jobId);
        if (_replicas[jobId][msg.sender] != 0) revert EscrowAlreadyClaimed(jobId, msg.sender);
        _replicas[jobId][msg.sender] = uint256(ReplicaStatus.Claimed);
        // claimed < replicas <= MAX_REPLICAS_LIMIT: no uint8 overflow.
        _jobs[jobId].claimed = job.claimed + 1;
        emit ReplicaClaimed(jobId, msg.sender);
        _stakeManager.lock(msg.sender, spec.collateral, spec.minReputation);
    }

    /// @inheritdoc IJobEscrow
    function commit(uint256 jobId, JobSpec calldata spec, bytes32 commitment)
        external
        nonReentrant
    {
        Job memory job = _load(jobId, spec);
        if (block.timestamp > spec.commitDeadline) {
            revert EscrowCommitClosed(jobId, spec.commitDeadline);
        }
        _requireNotUnfilled(jobId, job, spec);
        _requireStatus(jobId, ReplicaStatus.Claimed);
        _replicas[jobId][msg.sender] = _pack(commitment, ReplicaStatus.Committed);
        // committed < claimed <= replicas: no uint8 overflow.
        _jobs[jobId].committed = job.committed + 1;
        emit ReplicaCommitted(jobId, msg.sender, commitment);
    }

    /// @inheritdoc IJobEscrow
    function reveal(uint256 jobId, JobSpec calldata spec, bytes32 resultHash, bytes32 salt)
        external
        nonReentrant
    {
        Job memory job = _load(jobId, spec);
        if (block.timestamp > spec.revealDeadline) {
            revert EscrowRevealClosed(jobId, spec.revealDeadline);
        }
        if (job.committed < spec.replicas && block.timestamp <= spec.commitDeadline) {
            revert EscrowRevealNotOpen(jobId, spec.commitDeadline);
        }
        _requireNotUnfilled(jobId, job, spec);
        uint256 state = _requireStatus(jobId, ReplicaStatus.Committed);
        bytes32 commitment = commitmentOf(jobId, msg.sender, resultHash, salt);
        if (state != _pack(commitment, ReplicaStatus.Committed)) {
            revert EscrowCommitmentMismatch(jobId, msg.sender);
        }
        _replicas[jobId][msg.sender] = _resultDigest(resultHash);
        // revealed < committed <= replicas: no uint8 overflow.
        _jobs[jobId].revealed = job.revealed + 1;
        emit ReplicaRevealed(jobId, msg.sender, resultHash);
    }

    /// @inheritdoc IJobEscrow
    function finalize(
        uint256 jobId,
        JobSpec calldata spec,
        address[] calldata providers,
        bytes32 resultHash
    ) external nonReentrant {
        Job memory job = _load(jobId, spec);
        bool filled = job.claimed == spec.replicas;
        if (!filled && block.timestamp <= spec.claimDeadline) {
            revert EscrowNotFinalizable(jobId, uint256(spec.claimDeadline) + 1);
        }
        if (filled && job.revealed < spec.replicas && block.timestamp <= spec.revealDeadline) {
            revert EscrowNotFinalizable(jobId, uint256(spec.revealDeadline) + 1);
        }
        if (providers.length != job.claimed) {
            revert EscrowWrongReplicaSet(jobId, providers.length, job.claimed);
        }
        delete _jobs[jobId];
        uint256[] memory states = _takeReplicas(jobId, providers);
        IStakeManager.Outcome[] memory outcomes = new IStakeManager.Outcome[](states.length);
        uint256 slashed = 0;
        if (filled) {
            slashed = _settleFilled(jobId, spec, providers, resultHash, states, outcomes);
        } else {
            // Unfilled: everyone released (outcomes default to Released), bounty refunded.
            _credit(spec.consumer, jobId, spec.bounty);
            emit JobFinalized(jobId, Outcome.Unfilled, bytes32(0), 0, 0);
        }
        if (providers.length > 0) {
            // The stake manager applies the same per-replica rounding: both totals agree.
            uint256 received = _stakeManager.settle(providers, outcomes, spec.collateral);
            assert(received == slashed);
        }
    }

    /// @inheritdoc IJobEscrow
    function cancel(uint256 jobId, JobSpec calldata spec) external nonReentrant {
        Job memory job = _load(jobId, spec);
        if (msg.sender != spec.consumer) revert EscrowNotConsumer(jobId, msg.sender);
        if (job.claimed != 0) revert EscrowAlreadyClaimedJob(jobId, job.claimed);
        delete _jobs[jobId];
        emit JobCancelled(jobId);
        _credit(spec.consumer, jobId, spec.bounty);
    }

    /// @inheritdoc IJobEscrow
    function openAccount() external {
        if (_credits[msg.sender] == 0) {
            _credits[msg.sender] = 1;
            emit AccountOpened(msg.sender);
        }
    }

    /// @inheritdoc IJobEscrow
    function withdraw() external nonReentrant {
        uint256 balance = balanceOf(msg.sender);
        if (balance == 0) revert EscrowNothingToWithdraw();
        _withdraw(balance);
    }

    /// @inheritdoc IJobEscrow
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert EscrowNothingToWithdraw();
        uint256 balance = balanceOf(msg.sender);
        if (amount > balance) revert EscrowInsufficientBalance(balance, amount);
        _withdraw(amount);
    }

    /// @inheritdoc IJobEscrow
    function balanceOf(address account) public view returns (uint256) {
        uint256 raw = _credits[account];
        return raw == 0 ? 0 : raw - 1;
    }

    /// @inheritdoc IJobEscrow
    function jobState(uint256 jobId)
        external
        view
        returns (bytes24 specHash, uint8 claimed, uint8 committed, uint8 revealed)
    {
        Job memory job = _jobs[jobId];
        return (job.specHash, job.claimed, job.committed, job.revealed);
    }

    /// @inheritdoc IJobEscrow
    function replicaOf(uint256 jobId, address provider) external view returns (ReplicaStatus) {
        return ReplicaStatus(_replicas[jobId][provider] & STATUS_MASK);
    }

    /// @inheritdoc IJobEscrow
    function nextJobId() external view returns (uint256) {
        return _nextJobId;
    }

    /// @inheritdoc IJobEscrow
    function commitmentOf(uint256 jobId, address provider, bytes32 resultHash, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(jobId, provider, resultHash, salt));
    }

    /// @inheritdoc IJobEscrow
    function specHashOf(JobSpec calldata spec) external pure returns (bytes32) {
        return _hash(spec);
    }

    /// @inheritdoc IJobEscrow
    function stakeManager() external view returns (IStakeManager) {
        return _stakeManager;
    }

    /// @inheritdoc IJobEscrow
    function asset() external view returns (address) {
        return _asset;
    }

    /// @inheritdoc IJobEscrow
    function slashBps() external view returns (uint256) {
        return _slashBps;
    }

    /// @inheritdoc IJobEscrow
    function unbondingDelay() external view returns (uint256) {
        return _stakeManager.unbondingDelay();
    }

    /// @inheritdoc IJobEscrow
    function minStake() external view returns (uint256) {
        return _stakeManager.minStake();
    }

    /// @inheritdoc IJobEscrow
    function maxReplicas() external view returns (uint256) {
        return _maxReplicas;
    }

    /// @dev Credits winners (or refunds the consumer), credits slashed collateral to the
    /// consumer, fills `outcomes` for the stake manager and emits JobFinalized.
    function _settleFilled(
        uint256 jobId,
        JobSpec calldata spec,
        address[] calldata providers,
        bytes32 resultHash,
        uint256[] memory states,
        IStakeManager.Outcome[] memory outcomes
    ) private returns (uint256 slashed) {
        uint256 digest = _resultDigest(resultHash);
        uint256 winners = _count(states, digest);
        bool quorum = winners >= spec.quorum;
        if (!quorum) {
            if (_hasQuorum(states, spec.quorum)) revert EscrowNotQuorumResult(jobId, resultHash);
            (digest, winners, resultHash) = (0, 0, bytes32(0));
        }
        uint256 penalties = 0;
        for (uint256 i = 0; i < states.length; ++i) {
            uint256 state = states[i];
            if (quorum && state == digest) {
                outcomes[i] = IStakeManager.Outcome.Completed;
            } else if (state & STATUS_MASK == uint256(ReplicaStatus.Revealed)) {
                outcomes[i] =
                    quorum ? IStakeManager.Outcome.Slashed : IStakeManager.Outcome.Released;
            } else {
                outcomes[i] = IStakeManager.Outcome.Missed;
            }
            if (uint8(outcomes[i]) >= uint8(IStakeManager.Outcome.Slashed)) ++penalties;
        }
        // Each failing replica loses its collateral * slashBps / BPS rounded down, exactly as
        // the stake manager computes it, so the count multiplies the rounded penalty.
        // slither-disable-next-line divide-before-multiply
        slashed = penalties * (uint256(spec.collateral) * _slashBps / BPS);
        uint256 toConsumer = slashed;
        if (quorum) {
            _payWinners(jobId, spec.bounty, providers, outcomes, winners);
        } else {
            toConsumer += spec.bounty;
        }
        if (toConsumer > 0) _credit(spec.consumer, jobId, toConsumer);
        emit JobFinalized(
            jobId, quorum ? Outcome.Completed : Outcome.NoQuorum, resultHash, winners, slashed
        );
    }

    /// @dev Splits `bounty` equally among the Completed replicas; the first one (lowest
    /// address) also gets the remainder, so no wei is lost.
    function _payWinners(
        uint256 jobId,
        uint256 bounty,
        address[] calldata providers,
        IStakeManager.Outcome[] memory outcomes,
        uint256 winners
    ) private {
        uint256 share = bounty / winners;
        uint256 remainder = bounty % winners;
        for (uint256 i = 0; i < providers.length; ++i) {
            if (outcomes[i] != IStakeManager.Outcome.Completed) continue;
            _credit(providers[i], jobId, share + remainder);
            remainder = 0;
        }
    }

    /// @dev Loads and deletes each replica's state, checking the list is exactly the
    /// claimers in strictly ascending order (the caller checked the length).
    function _takeReplicas(uint256 jobId, address[] calldata providers)
        private
        returns (uint256[] memory states)
    {
        states = new uint256[](providers.length);
        address previous = address(0);
        for (uint256 i = 0; i < providers.length; ++i) {
            address provider = providers[i];
            if (provider <= previous) {
                revert EscrowWrongReplicaSet(jobId, providers.length, providers.length);
            }
            previous = provider;
            uint256 state = _replicas[jobId][provider];
            if (state == 0) revert EscrowNotReplica(jobId, provider);
            states[i] = state;
            delete _replicas[jobId][provider];
        }
    }

    function _count(uint256[] memory states, uint256 value) private pure returns (uint256 n) {
        for (uint256 i = 0; i < states.length; ++i) {
            if (states[i] == value) ++n;
        }
    }

    /// @dev Whether any revealed digest occurs at least `quorum` times (k <= 16: O(k^2)).
    function _hasQuorum(uint256[] memory states, uint256 quorum) private pure returns (bool) {
        for (uint256 i = 0; i < states.length; ++i) {
            if (states[i] & STATUS_MASK != uint256(ReplicaStatus.Revealed)) continue;
            if (_count(states, states[i]) >= quorum) return true;
        }
        return false;
    }

    function _validate(JobSpec calldata spec) private view {
        if (spec.consumer != msg.sender) revert EscrowInvalidSpec("consumer");
        if (spec.bounty == 0) revert EscrowInvalidSpec("bounty");
        if (spec.replicas == 0 || spec.replicas > _maxReplicas) {
            revert EscrowInvalidSpec("replicas");
        }
        if (spec.quorum > spec.replicas || 2 * uint256(spec.quorum) <= spec.replicas) {
            revert EscrowInvalidSpec("quorum");
        }
        if (
            spec.claimDeadline <= block.timestamp || spec.commitDeadline <= spec.claimDeadline
                || spec.revealDeadline <= spec.commitDeadline
        ) revert EscrowInvalidSpec("deadlines");
        if (spec.inputLocation.length > MAX_INPUT_LOCATION) {
            revert EscrowInvalidSpec("inputLocation");
        }
    }

    function _load(uint256 jobId, JobSpec calldata spec) private view returns (Job memory job) {
        job = _jobs[jobId];
        if (job.specHash == bytes24(0) || job.specHash != bytes24(_hash(spec))) {
            revert EscrowJobNotFound(jobId);
        }
    }

    /// @dev After the claim deadline, a job short of replicas only accepts finalize.
    function _requireNotUnfilled(uint256 jobId, Job memory job, JobSpec calldata spec)
        private
        view
    {
        if (job.claimed < spec.replicas && block.timestamp > spec.claimDeadline) {
            revert EscrowJobUnfilled(jobId);
        }
    }

    function _requireStatus(uint256 jobId, ReplicaStatus expected)
        private
        view
        returns (uint256 state)
    {
        state = _replicas[jobId][msg.sender];
        ReplicaStatus status = ReplicaStatus(state & STATUS_MASK);
        if (status != expected) revert EscrowWrongReplicaStatus(jobId, msg.sender, status);
    }

    function _credit(address account, uint256 jobId, uint256 amount) private {
        uint256 raw = _credits[account];
        _credits[account] = (raw == 0 ? 1 : raw) + amount;
        emit BalanceCredited(account, jobId, amount);
    }

    function _withdraw(uint256 amount) private {
        // amount <= balance = raw - 1: no underflow, and the slot stays non-zero.
        _credits[msg.sender] -= amount;
        emit Withdrawn(msg.sender, amount);
        if (_asset == address(0)) {
            (bool ok,) = msg.sender.call{value: amount}("");
            if (!ok) revert EscrowEtherTransferFailed(msg.sender, amount);
        } else {
            IERC20(_asset).safeTransfer(msg.sender, amount);
        }
    }

    function _hash(JobSpec calldata spec) private pure returns (bytes32) {
        return keccak256(abi.encode(spec));
    }

    /// @dev The top 248 bits of `value` with `status` in the low byte.
    function _pack(bytes32 value, ReplicaStatus status) private pure returns (uint256) {
        return (uint256(value) & ~STATUS_MASK) | uint256(status);
    }

    /// @dev What a revealed replica stores: keccak256 of the result hash, so finalize can
    /// check the full `resultHash` it is given against the 248 stored bits.
    function _resultDigest(bytes32 resultHash) private pure returns (uint256) {
        return _pack(keccak256(abi.encode(resultHash)), ReplicaStatus.Revealed);
    }
}
