// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IJobEscrow} from "./interfaces/IJobEscrow.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {JobTermsLib} from "./libraries/JobTermsLib.sol";

/// @title JobEscrow
/// @notice One ShareThePower market: provider stakes and reputation, jobs, k-of-n
/// commit-reveal, settlement and pull payouts. There is no owner and no admin function.
/// @dev Storage is laid out so that each protocol step writes few slots, and slots that
/// already hold a non-zero value (a write to a fresh slot costs ~17k gas more):
/// - per job, one slot: 24-byte terms hash prefix + claimed/committed/revealed counters;
///   deleted at settlement (events are the history);
/// - per provider, one stake slot (staked, unbonding, releaseAt), read by claims and written
///   only by staking, unstaking and slashing;
/// - per account, one slot (balance + 1, locked collateral, reputation): a claim locks
///   collateral in it, a settlement unlocks, pays and counts in it, withdraw reads it;
/// - per provider, LANES replica slots; a lane stays non-zero between jobs.
contract JobEscrow is IJobEscrow, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using JobTermsLib for JobTerms;

    /// @notice Largest `maxReplicas` a market can be deployed with.
    uint256 public constant MAX_REPLICAS_LIMIT = 16;
    /// @notice Largest `inputLocation` of a job spec, in bytes.
    uint256 public constant MAX_INPUT_LOCATION = 256;
    /// @notice Largest unbonding delay a market can be deployed with.
    uint256 public constant MAX_UNBONDING_DELAY = 365 days;
    /// @notice Replica lanes per provider: job `jobId` uses lane `jobId % LANES`.
    uint256 public constant LANES = 64;

    uint256 private constant BPS = 10_000;
    uint256 private constant MAX96 = type(uint96).max;

    // A lane word is [payload: 184 bits][jobId: 64 bits][status: 8 bits]. The payload is
    // the first 184 bits of the commitment (Committed) or of keccak256(resultHash)
    // (Revealed). 184 bits keep both binding: opening a stored commitment to another result
    // needs a second preimage of a 184-bit truncated keccak256 (~2^184 work), and even a
    // committer grinding two openings of its own commitment needs a collision (~2^92).
    uint256 private constant STATUS_MASK = 0xff;
    uint256 private constant JOB_SHIFT = 8;
    uint256 private constant PAYLOAD_SHIFT = 72;
    /// @dev A lane that was used or opened and holds no live job: status None, non-zero.
    uint256 private constant LANE_FREE = 2 ** PAYLOAD_SHIFT;

    struct Job {
        bytes24 specHash; // first 24 bytes of keccak256(abi.encode(terms)); zero: no live job
        uint8 claimed;
        uint8 committed;
        uint8 revealed;
    }

    struct Stake {
        uint96 staked; // bonded stake, includes the account's `locked`
        uint96 unbonding;
        uint40 releaseAt;
    }

    struct Account {
        uint96 balance; // 0: never used; else withdrawable + 1 (MAX96: the rest is in _surplus)
        uint96 locked; // collateral of unsettled claims
        uint32 completed;
        uint16 slashed;
        uint16 missed;
    }

    address private immutable _asset;
    uint256 private immutable _slashBps;
    uint256 private immutable _unbondingDelay;
    uint256 private immutable _minStake;
    uint256 private immutable _maxReplicas;

    uint256 private _nextJobId = 1;
    mapping(uint256 jobId => Job) private _jobs;
    mapping(address provider => Stake) private _stakes;
    /// @dev An `Account` packed into one word (see `_account` / `_store`), so that every
    /// update is one read and one write of the slot.
    mapping(address account => uint256) private _accounts;
    /// @dev Balance beyond what the 96-bit field holds; only read when that field is MAX96.
    mapping(address account => uint256) private _surplus;
    mapping(address provider => mapping(uint256 lane => uint256)) private _lanes;

    /// @param asset_ address(0) for native ETH, else the ERC-20 (must be a contract) for
    /// stakes, bounties and collateral. @param slashBps_ 1..10_000.
    /// @param unbondingDelay_ seconds, 1..MAX_UNBONDING_DELAY. @param minStake_ 1..2^96-1.
    /// @param maxReplicas_ 1..MAX_REPLICAS_LIMIT.
    constructor(
        address asset_,
        uint256 slashBps_,
        uint256 unbondingDelay_,
        uint256 minStake_,
        uint256 maxReplicas_
    ) {
        if (asset_ != address(0) && asset_.code.length == 0) {
            revert StakeParameterOutOfRange("asset", uint256(uint160(asset_)));
        }
        if (slashBps_ == 0 || slashBps_ > BPS) {
            revert StakeParameterOutOfRange("slashBps", slashBps_);
        }
        if (unbondingDelay_ == 0 || unbondingDelay_ > MAX_UNBONDING_DELAY) {
            revert StakeParameterOutOfRange("unbondingDelay", unbondingDelay_);
        }
        if (minStake_ == 0 || minStake_ > MAX96) {
            revert StakeParameterOutOfRange("minStake", minStake_);
        }
        if (maxReplicas_ == 0 || maxReplicas_ > MAX_REPLICAS_LIMIT) {
            revert EscrowParameterOutOfRange("maxReplicas", maxReplicas_);
        }
        _asset = asset_;
        _slashBps = slashBps_;
        _unbondingDelay = unbondingDelay_;
        _minStake = minStake_;
        _maxReplicas = maxReplicas_;
    }

    // ------------------------------------------------------------------ staking

    /// @inheritdoc IStaking
    function stake(uint256 amount) external payable nonReentrant {
        if (amount == 0) revert StakeZeroAmount();
        uint256 expectedValue = _asset == address(0) ? amount : 0;
        if (msg.value != expectedValue) revert StakeWrongValue(msg.value, expectedValue);
        Stake storage s = _stakes[msg.sender];
        uint256 staked = s.staked + amount;
        if (staked > MAX96) revert StakeAmountTooLarge(amount);
        if (staked < _minStake) revert StakeBelowMinimum(staked, _minStake);
        // staked <= MAX96 (checked): the cast is exact.
        s.staked = uint96(staked);
        emit Staked(msg.sender, amount, staked);
        _pull(amount);
    }

    /// @inheritdoc IStaking
    function requestUnstake(uint256 amount) external nonReentrant {
        if (amount == 0) revert StakeZeroAmount();
        Stake storage s = _stakes[msg.sender];
        uint256 free = s.staked - _account(msg.sender).locked;
        if (amount > free) revert StakeInsufficient(free, amount);
        uint256 total = s.unbonding + amount;
        if (total > MAX96) revert StakeAmountTooLarge(total);
        uint256 releaseAt = block.timestamp + _unbondingDelay;
        // amount <= free <= staked < 2^96, total < 2^96 (checked), releaseAt < 2^40 for any
        // timestamp this century: the casts are exact.
        s.staked -= uint96(amount);
        s.unbonding = uint96(total);
        s.releaseAt = uint40(releaseAt);
        emit UnstakeRequested(msg.sender, amount, total, releaseAt);
    }

    /// @inheritdoc IStaking
    function withdrawStake() external nonReentrant {
        Stake storage s = _stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert StakeNothingUnbonding();
        if (block.timestamp < s.releaseAt) {
            revert StakeStillUnbonding(s.releaseAt, block.timestamp);
        }
        s.unbonding = 0;
        s.releaseAt = 0;
        emit StakeWithdrawn(msg.sender, amount);
        _send(amount);
    }

    // ------------------------------------------------------------------ jobs

    /// @inheritdoc IJobEscrow
    function postJob(JobSpec calldata spec) external payable nonReentrant returns (uint256 jobId) {
        _validate(spec);
        uint256 expectedValue = _asset == address(0) ? spec.bounty : 0;
        if (msg.value != expectedValue) revert EscrowWrongValue(msg.value, expectedValue);
        jobId = _nextJobId;
        _nextJobId = jobId + 1;
        _jobs[jobId].specHash = bytes24(keccak256(abi.encode(JobTermsLib.pack(spec))));
        _emitJobPosted(jobId, spec.inputLocation.length);
        _pull(spec.bounty);
    }

    /// @inheritdoc IJobEscrow
    function claim(uint256 jobId, JobTerms calldata terms) external {
        Job memory job = _load(jobId, terms);
        if (block.timestamp > terms.claimDeadline()) {
            revert EscrowClaimClosed(jobId, terms.claimDeadline());
        }
        if (job.claimed >= terms.replicas()) revert EscrowJobFull(jobId);
        uint256 laneId = jobId % LANES;
        uint256 lane = _lanes[msg.sender][laneId];
        if (lane & STATUS_MASK != uint256(ReplicaStatus.None)) {
            uint256 busy = _laneJob(lane);
            if (busy == jobId) revert EscrowAlreadyClaimed(jobId, msg.sender);
            revert EscrowLaneBusy(jobId, msg.sender, busy);
        }
        _lock(terms.collateral(), terms.minReputation());
        _lanes[msg.sender][laneId] = _laneWord(jobId, ReplicaStatus.Claimed, 0);
        // claimed < replicas <= MAX_REPLICAS_LIMIT: no uint8 overflow.
        _jobs[jobId].claimed = job.claimed + 1;
        emit ReplicaClaimed(jobId, msg.sender);
    }

    /// @inheritdoc IJobEscrow
    function commit(uint256 jobId, JobTerms calldata terms, bytes32 commitment) external {
        Job memory job = _load(jobId, terms);
        if (block.timestamp > terms.commitDeadline()) {
            revert EscrowCommitClosed(jobId, terms.commitDeadline());
        }
        _requireNotUnfilled(jobId, job, terms);
        uint256 laneId = jobId % LANES;
        _requireStatus(jobId, _lanes[msg.sender][laneId], ReplicaStatus.Claimed);
        _lanes[msg.sender][laneId] = _laneWord(jobId, ReplicaStatus.Committed, commitment);
        // committed < claimed <= replicas: no uint8 overflow.
        _jobs[jobId].committed = job.committed + 1;
        emit ReplicaCommitted(jobId, msg.sender, commitment);
    }

    /// @inheritdoc IJobEscrow
    function reveal(
        uint256 jobId,
        JobTerms calldata terms,
        bytes32 resultHash,
        bytes32 salt,
        address[] calldata others,
        bytes32 quorumHash
    ) external {
        Job memory job = _load(jobId, terms);
        _checkReveal(jobId, job, terms, resultHash, salt);
        uint256 revealedWord = _revealedWord(jobId, resultHash);
        emit ReplicaRevealed(jobId, msg.sender, resultHash);
        // revealed < committed <= replicas <= MAX_REPLICAS_LIMIT: no uint8 overflow.
        if (job.revealed + 1 < terms.replicas()) {
            _lanes[msg.sender][jobId % LANES] = revealedWord;
            _jobs[jobId].revealed = job.revealed + 1;
            return;
        }
        _settleLastReveal(jobId, terms, resultHash, revealedWord, others, quorumHash);
    }

    /// @inheritdoc IJobEscrow
    function finalize(
        uint256 jobId,
        JobTerms calldata terms,
        address[] calldata providers,
        bytes32 resultHash
    ) external {
        Job memory job = _load(jobId, terms);
        bool filled = job.claimed == terms.replicas();
        if (!filled && block.timestamp <= terms.claimDeadline()) {
            revert EscrowNotFinalizable(jobId, terms.claimDeadline() + 1);
        }
        // The last reveal settles a filled job whose replicas all revealed: a filled job that
        // is still live has a replica missing, and waits for the reveal deadline.
        if (filled && block.timestamp <= terms.revealDeadline()) {
            revert EscrowNotFinalizable(jobId, terms.revealDeadline() + 1);
        }
        if (providers.length != job.claimed) {
            revert EscrowWrongReplicaSet(jobId, providers.length, job.claimed);
        }
        (address[] memory list, uint256[] memory states) =
            _readReplicas(jobId, providers, address(0), 0);
        delete _jobs[jobId];
        if (filled) {
            _settleFilled(jobId, terms, list, resultHash, states);
        } else {
            // Unfilled: every claimer released, the bounty refunded.
            for (uint256 i = 0; i < list.length; ++i) {
                _settleReplica(jobId, list[i], Settlement.Released, terms.collateral(), 0, 0);
            }
            _creditConsumer(terms.consumer(), jobId, terms.bounty());
            emit JobFinalized(jobId, Outcome.Unfilled, bytes32(0), 0, 0);
        }
    }

    /// @inheritdoc IJobEscrow
    function cancel(uint256 jobId, JobTerms calldata terms) external {
        Job memory job = _load(jobId, terms);
        if (msg.sender != terms.consumer()) revert EscrowNotConsumer(jobId, msg.sender);
        if (job.claimed != 0) revert EscrowAlreadyClaimedJob(jobId, job.claimed);
        delete _jobs[jobId];
        emit JobCancelled(jobId);
        _creditConsumer(terms.consumer(), jobId, terms.bounty());
    }

    // ------------------------------------------------------------------ balances

    /// @inheritdoc IJobEscrow
    function openAccount(uint256 lanes) external {
        if (lanes > LANES) revert EscrowParameterOutOfRange("lanes", lanes);
        Account memory account = _account(msg.sender);
        if (account.balance == 0) {
            account.balance = 1;
            _store(msg.sender, account);
        }
        mapping(uint256 => uint256) storage own = _lanes[msg.sender];
        for (uint256 i = 0; i < lanes; ++i) {
            if (own[i] == 0) own[i] = LANE_FREE;
        }
        emit AccountOpened(msg.sender, lanes);
    }

    /// @inheritdoc IJobEscrow
    function withdraw() external nonReentrant {
        Account memory a = _account(msg.sender);
        uint256 balance = _balanceOf(a, msg.sender);
        if (balance == 0) revert EscrowNothingToWithdraw();
        _withdraw(a, balance, balance);
    }

    /// @inheritdoc IJobEscrow
    function withdraw(uint256 amount) external nonReentrant {
        if (amount == 0) revert EscrowNothingToWithdraw();
        Account memory a = _account(msg.sender);
        uint256 balance = _balanceOf(a, msg.sender);
        if (amount > balance) revert EscrowInsufficientBalance(balance, amount);
        _withdraw(a, balance, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IJobEscrow
    function balanceOf(address account) external view returns (uint256) {
        return _balanceOf(_account(account), account);
    }

    /// @inheritdoc IStaking
    function stakeOf(address provider)
        external
        view
        returns (uint256 staked, uint256 locked, uint256 unbonding, uint256 releaseAt)
    {
        Stake memory s = _stakes[provider];
        return (s.staked, _account(provider).locked, s.unbonding, s.releaseAt);
    }

    /// @inheritdoc IStaking
    function reputationOf(address provider)
        external
        view
        returns (uint256 completed, uint256 slashed, uint256 missed, uint256 score)
    {
        Account memory a = _account(provider);
        return (a.completed, a.slashed, a.missed, _score(a));
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
        uint256 lane = _lanes[provider][jobId % LANES];
        if (lane & STATUS_MASK == 0 || _laneJob(lane) != jobId) return ReplicaStatus.None;
        return ReplicaStatus(lane & STATUS_MASK);
    }

    /// @inheritdoc IJobEscrow
    function laneJobOf(uint256 jobId, address provider) external view returns (uint256) {
        uint256 lane = _lanes[provider][jobId % LANES];
        return lane & STATUS_MASK == 0 ? 0 : _laneJob(lane);
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
        return keccak256(abi.encode(JobTermsLib.pack(spec)));
    }

    /// @inheritdoc IJobEscrow
    function termsOf(JobSpec calldata spec) external pure returns (JobTerms memory) {
        return JobTermsLib.pack(spec);
    }

    /// @inheritdoc IJobEscrow
    function asset() external view returns (address) {
        return _asset;
    }

    /// @inheritdoc IJobEscrow
    function slashBps() external view returns (uint256) {
        return _slashBps;
    }

    /// @inheritdoc IStaking
    function unbondingDelay() external view returns (uint256) {
        return _unbondingDelay;
    }

    /// @inheritdoc IStaking
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @inheritdoc IJobEscrow
    function maxReplicas() external view returns (uint256) {
        return _maxReplicas;
    }

    // ------------------------------------------------------------------ settlement

    /// @dev Reverts unless msg.sender may reveal `resultHash` with `salt` now.
    function _checkReveal(
        uint256 jobId,
        Job memory job,
        JobTerms calldata terms,
        bytes32 resultHash,
        bytes32 salt
    ) private view {
        if (block.timestamp > terms.revealDeadline()) {
            revert EscrowRevealClosed(jobId, terms.revealDeadline());
        }
        if (job.committed < terms.replicas() && block.timestamp <= terms.commitDeadline()) {
            revert EscrowRevealNotOpen(jobId, terms.commitDeadline());
        }
        _requireNotUnfilled(jobId, job, terms);
        uint256 lane = _lanes[msg.sender][jobId % LANES];
        _requireStatus(jobId, lane, ReplicaStatus.Committed);
        bytes32 commitment = commitmentOf(jobId, msg.sender, resultHash, salt);
        if (lane != _laneWord(jobId, ReplicaStatus.Committed, commitment)) {
            revert EscrowCommitmentMismatch(jobId, msg.sender);
        }
    }

    /// @dev The reveal that completes the job: every replica revealed (the job is not
    /// unfilled, so claimed == replicas), `others` are the other claimers. Settles the job as
    /// finalize would; the settlement frees the caller's lane. The winning hash is the
    /// caller's if it has the quorum, else `quorumHash` (checked by _settleFilled).
    function _settleLastReveal(
        uint256 jobId,
        JobTerms calldata terms,
        bytes32 resultHash,
        uint256 revealedWord,
        address[] calldata others,
        bytes32 quorumHash
    ) private {
        if (others.length + 1 != terms.replicas()) {
            revert EscrowWrongReplicaSet(jobId, others.length, terms.replicas() - 1);
        }
        (address[] memory providers, uint256[] memory states) =
            _readReplicas(jobId, others, msg.sender, revealedWord);
        delete _jobs[jobId];
        bytes32 winning = _count(states, revealedWord) >= terms.quorum() ? resultHash : quorumHash;
        _settleFilled(jobId, terms, providers, winning, states);
    }

    /// @dev Settles every replica of a filled job, credits the consumer what it is owed and
    /// emits JobFinalized.
    function _settleFilled(
        uint256 jobId,
        JobTerms calldata terms,
        address[] memory providers,
        bytes32 resultHash,
        uint256[] memory states
    ) private {
        uint256 digest = _revealedWord(jobId, resultHash);
        uint256 winners = _count(states, digest);
        bool quorum = winners >= terms.quorum();
        if (!quorum) {
            if (_hasQuorum(states, terms.quorum())) {
                revert EscrowNotQuorumResult(jobId, resultHash);
            }
            (digest, winners, resultHash) = (0, 0, bytes32(0));
        }
        uint256 slashed = _settleReplicas(jobId, terms, providers, states, digest, winners);
        uint256 toConsumer = quorum ? slashed : slashed + terms.bounty();
        if (toConsumer > 0) _creditConsumer(terms.consumer(), jobId, toConsumer);
        emit JobFinalized(
            jobId, quorum ? Outcome.Completed : Outcome.NoQuorum, resultHash, winners, slashed
        );
    }

    /// @dev Settles each replica of a filled job: those whose state is `digest` share the
    /// bounty (`winners` > 0: a quorum), the first one (lowest address) also gets the
    /// remainder so no wei is lost; other revealers are slashed if there is a quorum and
    /// released if not; non-revealers are slashed as missed. Returns the total slashed.
    function _settleReplicas(
        uint256 jobId,
        JobTerms calldata terms,
        address[] memory providers,
        uint256[] memory states,
        uint256 digest,
        uint256 winners
    ) private returns (uint256 slashed) {
        // Each failing replica loses its collateral * slashBps / BPS, rounded down.
        uint256[4] memory split = [
            terms.collateral() * _slashBps / BPS, // penalty
            winners > 0 ? terms.bounty() / winners : 0, // share
            winners > 0 ? terms.bounty() % winners : 0, // remainder, to the first winner
            terms.collateral()
        ];
        for (uint256 i = 0; i < states.length; ++i) {
            Settlement settlement = Settlement.Missed;
            uint256 taken = split[0];
            uint256 payout = 0;
            if (winners > 0 && states[i] == digest) {
                (settlement, taken, payout, split[2]) =
                (Settlement.Completed, 0, split[1] + split[2], 0);
            } else if (states[i] & STATUS_MASK == uint256(ReplicaStatus.Revealed)) {
                settlement = winners > 0 ? Settlement.Slashed : Settlement.Released;
                if (winners == 0) taken = 0;
            }
            slashed += taken;
            _settleReplica(jobId, providers[i], settlement, split[3], taken, payout);
        }
    }

    /// @dev Frees the provider's lane, unlocks `collateral`, takes `penalty` of its stake,
    /// credits `payout` and counts the settlement in its reputation.
    function _settleReplica(
        uint256 jobId,
        address provider,
        Settlement settlement,
        uint256 collateral,
        uint256 penalty,
        uint256 payout
    ) private {
        _lanes[provider][jobId % LANES] = LANE_FREE;
        Account memory a = _account(provider);
        // The claim locked exactly `collateral` in this account: no underflow.
        a.locked -= uint96(collateral);
        if (settlement == Settlement.Completed) {
            a.completed = _inc32(a.completed);
            _addBalance(a, provider, payout);
        } else if (settlement == Settlement.Slashed) {
            a.slashed = _inc16(a.slashed);
        } else if (settlement == Settlement.Missed) {
            a.missed = _inc16(a.missed);
        }
        _store(provider, a);
        // penalty <= collateral <= locked <= staked: no underflow; the cast is exact.
        if (penalty > 0) _stakes[provider].staked -= uint96(penalty);
        emit ReplicaSettled(jobId, provider, settlement, payout, penalty);
    }

    /// @dev Locks `collateral` of the caller's free stake after the eligibility checks.
    function _lock(uint256 collateral, uint256 minReputation) private {
        uint256 staked = _stakes[msg.sender].staked;
        if (staked < _minStake) revert StakeBelowMinimum(staked, _minStake);
        Account memory a = _account(msg.sender);
        uint256 score = _score(a);
        if (score < minReputation) revert StakeReputationTooLow(score, minReputation);
        uint256 free = staked - a.locked;
        if (collateral > free) revert StakeInsufficient(free, collateral);
        // locked + collateral <= staked < 2^96: the cast is exact.
        a.locked += uint96(collateral);
        if (a.balance == 0) a.balance = 1;
        _store(msg.sender, a);
    }

    /// @dev The job's replicas in strictly ascending address order, with their lane words:
    /// each `listed` provider (its lane must hold `jobId`) and, if `self` is not zero, `self`
    /// with `selfState` (the last revealer, whose lane the caller checked). Reverts unless the
    /// merged list is strictly ascending; the caller checked that its length is the number
    /// of claimers, so it is exactly the claimers.
    function _readReplicas(
        uint256 jobId,
        address[] calldata listed,
        address self,
        uint256 selfState
    ) private view returns (address[] memory providers, uint256[] memory states) {
        uint256 n = listed.length;
        uint256 total = self == address(0) ? n : n + 1;
        providers = new address[](total);
        states = new uint256[](total);
        uint256 laneId = jobId % LANES;
        address previous = address(0);
        uint256 j = 0;
        for (uint256 i = 0; i < n; ++i) {
            address provider = listed[i];
            if (j == i && self != address(0) && self < provider) {
                if (self <= previous) revert EscrowWrongReplicaSet(jobId, n, n);
                (providers[j], states[j], previous) = (self, selfState, self);
                ++j;
            }
            if (provider <= previous) revert EscrowWrongReplicaSet(jobId, n, n);
            previous = provider;
            uint256 state = _lanes[provider][laneId];
            if (state & STATUS_MASK == 0 || _laneJob(state) != jobId) {
                revert EscrowNotReplica(jobId, provider);
            }
            (providers[j], states[j]) = (provider, state);
            ++j;
        }
        if (j < total) {
            // self is above every listed address (listed[n - 1] == self fails here).
            if (self <= previous) revert EscrowWrongReplicaSet(jobId, n, n);
            (providers[j], states[j]) = (self, selfState);
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

    // ------------------------------------------------------------------ helpers

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
                || spec.revealDeadline > type(uint32).max
        ) revert EscrowInvalidSpec("deadlines");
        if (spec.inputLocation.length > MAX_INPUT_LOCATION) {
            revert EscrowInvalidSpec("inputLocation");
        }
    }

    /// @dev Emits JobPosted(jobId, msg.sender, spec) with the calldata as its data: for the
    /// canonical encoding of postJob(spec) (checked here: one head offset, the bytes right
    /// after the tuple head, nothing after them), msg.data[4:] is abi.encode(spec) except
    /// for the padding after inputLocation, which is zeroed. Every field was range-checked
    /// when _validate and pack read it.
    function _emitJobPosted(uint256 jobId, uint256 locationLength) private {
        bytes32 topic = JobPosted.selector;
        bool canonical;
        assembly ("memory-safe") {
            let padded := and(add(locationLength, 31), not(31))
            canonical := and(
                and(eq(calldataload(4), 0x20), eq(calldataload(0x1c4), 0x1c0)),
                eq(calldatasize(), add(0x204, padded))
            )
        }
        if (!canonical) revert EscrowInvalidSpec("encoding");
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let size := sub(calldatasize(), 4)
            calldatacopy(ptr, 4, size)
            mstore(add(ptr, add(0x200, locationLength)), 0)
            log3(ptr, size, topic, jobId, caller())
        }
    }

    function _load(uint256 jobId, JobTerms calldata terms) private view returns (Job memory job) {
        job = _jobs[jobId];
        if (job.specHash == bytes24(0) || job.specHash != bytes24(keccak256(abi.encode(terms)))) {
            revert EscrowJobNotFound(jobId);
        }
    }

    /// @dev After the claim deadline, a job short of replicas only accepts finalize.
    function _requireNotUnfilled(uint256 jobId, Job memory job, JobTerms calldata terms)
        private
        view
    {
        if (job.claimed < terms.replicas() && block.timestamp > terms.claimDeadline()) {
            revert EscrowJobUnfilled(jobId);
        }
    }

    /// @dev The caller's lane must hold `jobId` in phase `expected`.
    function _requireStatus(uint256 jobId, uint256 lane, ReplicaStatus expected) private view {
        ReplicaStatus status = ReplicaStatus(lane & STATUS_MASK);
        if (status != ReplicaStatus.None && _laneJob(lane) != jobId) status = ReplicaStatus.None;
        if (status != expected) revert EscrowWrongReplicaStatus(jobId, msg.sender, status);
    }

    function _creditConsumer(address account, uint256 jobId, uint256 amount) private {
        Account memory a = _account(account);
        _addBalance(a, account, amount);
        _store(account, a);
        emit BalanceCredited(account, jobId, amount);
    }

    /// @dev Adds `amount` to `a.balance` (stored + 1); what does not fit 96 bits goes to
    /// `_surplus`, so a credit never reverts on overflow.
    function _addBalance(Account memory a, address account, uint256 amount) private {
        uint256 raw = (a.balance == 0 ? 1 : a.balance) + amount;
        if (raw >= MAX96) {
            _surplus[account] += raw - MAX96;
            raw = MAX96;
        }
        // raw <= MAX96: the cast is exact.
        a.balance = uint96(raw);
    }

    function _balanceOf(Account memory a, address account) private view returns (uint256) {
        uint256 raw = a.balance;
        if (raw == 0) return 0;
        return raw == MAX96 ? raw - 1 + _surplus[account] : raw - 1;
    }

    function _withdraw(Account memory a, uint256 balance, uint256 amount) private {
        uint256 raw = a.balance;
        uint256 rest = balance - amount + 1;
        if (raw == MAX96) {
            // The surplus is only read when the field is full; settle both.
            uint256 spill = rest > MAX96 ? rest - MAX96 : 0;
            _surplus[msg.sender] = spill;
            rest -= spill;
        }
        // rest <= MAX96 (the balance fit before, or the excess spilled): the cast is exact;
        // rest >= 1, so the slot stays non-zero.
        a.balance = uint96(rest);
        _store(msg.sender, a);
        emit Withdrawn(msg.sender, amount);
        _send(amount);
    }

    /// @dev Takes `amount` of the asset from the caller (ETH arrived as msg.value).
    function _pull(uint256 amount) private {
        if (_asset != address(0)) {
            IERC20(_asset).safeTransferFrom(msg.sender, address(this), amount);
        }
    }

    /// @dev Sends `amount` of the asset to the caller. Only withdraw and withdrawStake call
    /// it, after taking `amount` off the caller's own balance or unbonding stake.
    function _send(uint256 amount) private {
        if (_asset == address(0)) {
            // The recipient is msg.sender, paid what the books already took off its account.
            // slither-disable-next-line arbitrary-send-eth
            (bool ok,) = msg.sender.call{value: amount}("");
            if (!ok) revert EscrowEtherTransferFailed(msg.sender, amount);
        } else {
            IERC20(_asset).safeTransfer(msg.sender, amount);
        }
    }

    function _account(address account) private view returns (Account memory a) {
        uint256 word = _accounts[account];
        // Each field is masked to its width: the casts are exact.
        a.balance = uint96(word);
        a.locked = uint96(word >> 96);
        a.completed = uint32(word >> 192);
        a.slashed = uint16(word >> 224);
        a.missed = uint16(word >> 240);
    }

    function _store(address account, Account memory a) private {
        _accounts[account] = uint256(a.balance) | uint256(a.locked) << 96 | uint256(a.completed)
            << 192 | uint256(a.slashed) << 224 | uint256(a.missed) << 240;
    }

    function _score(Account memory a) private pure returns (uint256) {
        uint256 penalty = 3 * uint256(a.slashed) + a.missed;
        return a.completed > penalty ? a.completed - penalty : 0;
    }

    /// @dev Reputation counters saturate instead of overflowing.
    function _inc32(uint32 value) private pure returns (uint32) {
        return value == type(uint32).max ? value : value + 1;
    }

    function _inc16(uint16 value) private pure returns (uint16) {
        return value == type(uint16).max ? value : value + 1;
    }

    /// @dev Job ids are a counter from 1: they fit the lane's 64-bit field for any
    /// realistic history (2^64 posts).
    function _laneWord(uint256 jobId, ReplicaStatus status, bytes32 payload)
        private
        pure
        returns (uint256)
    {
        return (uint256(payload) >> PAYLOAD_SHIFT << PAYLOAD_SHIFT)
            | (uint256(uint64(jobId)) << JOB_SHIFT) | uint256(status);
    }

    /// @dev What a revealed replica stores: keccak256 of the result hash (so finalize can
    /// check the full `resultHash` it is given against the stored 184 bits).
    function _revealedWord(uint256 jobId, bytes32 resultHash) private pure returns (uint256) {
        return _laneWord(jobId, ReplicaStatus.Revealed, keccak256(abi.encode(resultHash)));
    }

    function _laneJob(uint256 lane) private pure returns (uint256) {
        return uint64(lane >> JOB_SHIFT);
    }
}
