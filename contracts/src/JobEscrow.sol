// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IJobEscrow, MAX_POST_BATCH} from "./interfaces/IJobEscrow.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {JobTermsLib} from "./libraries/JobTermsLib.sol";
import {DrawLib} from "./libraries/DrawLib.sol";

/// @title JobEscrow
/// @notice One ShareThePower market (protocol v2): provider stakes and reputation, jobs,
/// stake-weighted draw, commit-reveal, settlement and pull payouts. There is no owner and no
/// admin function. The rules are in IJobEscrow's notes.
/// @dev Storage is laid out so that each protocol step writes few slots, and slots that
/// already hold a non-zero value (a write to a fresh slot costs ~17k gas more):
/// - per job, one slot: 24-byte terms hash prefix, committed/revealed counters and the
///   market's total stake as the post's block found it (the draw's denominator); deleted at settlement
///   (events are the history);
/// - per provider, one stake slot (staked, bondedAt), read by commits and written only by
///   staking, unstaking and slashing;
/// - per account, one slot (balance + 1, locked collateral, reputation): a commit locks
///   collateral in it, a settlement unlocks, pays and counts in it, withdraw reads it;
/// - per provider, replica lanes (any index); a lane stays non-zero between jobs;
/// - one slot for the job counter and the total stake (every post reads both), one for the
///   burned total.
contract JobEscrow is IJobEscrow, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using JobTermsLib for JobTerms;

    /// @notice Largest `maxReplicas` a market can be deployed with.
    uint256 public constant MAX_REPLICAS_LIMIT = 16;
    /// @notice Largest `inputLocation` of a job spec, in bytes.
    uint256 public constant MAX_INPUT_LOCATION = 256;
    /// @notice Largest `maxHorizon` a market can be deployed with.
    uint256 public constant MAX_HORIZON_LIMIT = 365 days;
    /// @notice Most specs one postJobs call takes.
    uint256 public constant MAX_BATCH = MAX_POST_BATCH;
    /// @notice Most lanes one openAccount call pre-pays.
    uint256 public constant MAX_OPEN_LANES = 256;
    /// @notice Lane indexes are below 2^96 (they share a word with the address in replica
    /// lists).
    uint256 public constant LANE_LIMIT = 2 ** 96;
    /// @notice EIP-2935's block hash history contract (8191 blocks), read for posts older
    /// than the 256 blocks BLOCKHASH serves.
    address public constant BLOCK_HASH_HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;

    uint256 private constant BPS = 10_000;
    uint256 private constant MAX96 = type(uint96).max;

    // A lane word is [payload: 184 bits][jobId: 64 bits][flags: 8 bits]. Flags: the phase
    // (ReplicaStatus) in the low 2 bits, DRAWN in bit 7. The payload is the first 184 bits
    // of the commitment (Committed) or of keccak256(resultHash) (Revealed). 184 bits keep
    // both binding: opening a stored commitment to another result needs a second preimage
    // of a 184-bit truncated keccak256 (~2^184 work), and even a committer grinding two
    // openings of its own commitment needs a collision (~2^92).
    uint256 private constant PHASE_MASK = 0x03;
    uint256 private constant DRAWN = 0x80;
    uint256 private constant JOB_SHIFT = 8;
    uint256 private constant PAYLOAD_SHIFT = 72;
    /// @dev A lane that was used or opened and holds no live job: phase None, non-zero.
    uint256 private constant LANE_FREE = 2 ** PAYLOAD_SHIFT;
    /// @dev `Job.revealed` of an optimistic job under challenge (a live escalation).
    uint8 private constant CHALLENGED = type(uint8).max;

    struct Job {
        bytes24 specHash; // first 24 bytes of keccak256(abi.encode(terms)); zero: no live job
        uint8 committed;
        uint8 revealed;
        uint48 drawTotal; // DrawLib.encodeTotal(total stake as the post's block found it)
    }

    struct Stake {
        uint96 staked; // bonded stake, includes the account's `locked`
        uint32 bondedAt; // the block in which the stake last grew
    }

    struct Account {
        uint96 balance; // 0: never used; else withdrawable + 1 (MAX96: the rest is in _surplus)
        uint96 locked; // collateral of unsettled commits
        uint32 completed;
        uint16 slashed;
        uint16 missed;
    }

    /// @dev Read and written together by every post (so its draw reads the totals for free).
    /// A post's draw uses the total as it stood before the post's block: stake added in that
    /// block (a flash loan staked, posted against and unstaked in one transaction) does not
    /// dilute it.
    struct Counter {
        uint64 nextJobId;
        uint112 totalStake; // sum of every provider's `staked`, capped at 2^112 - 1 by stake()
        uint48 blockStartTotal; // DrawLib.encodeTotal(totalStake before `changedAt`'s changes)
        uint32 changedAt; // the last block whose transactions changed totalStake
    }

    /// @dev A live escalation job: the challenged optimistic job and its one replica (the
    /// defendant), which the escalation's settlement settles too.
    struct Escalation {
        uint64 parentId;
        address defendant;
        uint96 lane;
    }

    /// @dev One slot of a job being settled, read from its provider's lane.
    struct Slot {
        address provider;
        uint256 lane;
        uint256 state; // the lane word without the DRAWN flag; 0 for a duplicate provider
        bool drawn;
    }

    address private immutable _asset;
    uint256 private immutable _slashBps;
    uint256 private immutable _minStake;
    uint256 private immutable _maxReplicas;
    uint256 private immutable _minCommitWindow;
    uint256 private immutable _minRevealWindow;
    uint256 private immutable _maxHorizon;
    uint256 private immutable _challengeWindow;
    uint256 private immutable _escalationReplicas;

    Counter private _counter =
        Counter({nextJobId: 1, totalStake: 0, blockStartTotal: 0, changedAt: 0});
    /// @dev Slashed collateral, held for good.
    uint256 private _burned;
    mapping(uint256 jobId => Job) private _jobs;
    mapping(address provider => Stake) private _stakes;
    /// @dev An `Account` packed into one word (see `_account` / `_store`), so that every
    /// update is one read and one write of the slot.
    mapping(address account => uint256) private _accounts;
    /// @dev Balance beyond what the 96-bit field holds; only read when that field is MAX96.
    mapping(address account => uint256) private _surplus;
    mapping(address provider => mapping(uint256 lane => uint256)) private _lanes;
    mapping(uint256 escalationId => Escalation) private _escalations;

    /// @param params The market's rules (ranges in IJobEscrow.Params).
    constructor(Params memory params) {
        if (params.asset != address(0) && params.asset.code.length == 0) {
            revert StakeParameterOutOfRange("asset", uint256(uint160(params.asset)));
        }
        if (params.slashBps == 0 || params.slashBps > BPS) {
            revert StakeParameterOutOfRange("slashBps", params.slashBps);
        }
        if (params.minStake == 0 || params.minStake > MAX96) {
            revert StakeParameterOutOfRange("minStake", params.minStake);
        }
        if (params.maxReplicas == 0 || params.maxReplicas > MAX_REPLICAS_LIMIT) {
            revert EscrowParameterOutOfRange("maxReplicas", params.maxReplicas);
        }
        if (params.minCommitWindow == 0) {
            revert EscrowParameterOutOfRange("minCommitWindow", params.minCommitWindow);
        }
        if (params.minRevealWindow == 0) {
            revert EscrowParameterOutOfRange("minRevealWindow", params.minRevealWindow);
        }
        if (
            params.maxHorizon > MAX_HORIZON_LIMIT
                || params.maxHorizon < params.minCommitWindow + params.minRevealWindow
        ) revert EscrowParameterOutOfRange("maxHorizon", params.maxHorizon);
        if (params.challengeWindow == 0 || params.challengeWindow > MAX_HORIZON_LIMIT) {
            revert EscrowParameterOutOfRange("challengeWindow", params.challengeWindow);
        }
        if (params.escalationReplicas < 2 || params.escalationReplicas > MAX_REPLICAS_LIMIT) {
            revert EscrowParameterOutOfRange("escalationReplicas", params.escalationReplicas);
        }
        _asset = params.asset;
        _slashBps = params.slashBps;
        _minStake = params.minStake;
        _maxReplicas = params.maxReplicas;
        _minCommitWindow = params.minCommitWindow;
        _minRevealWindow = params.minRevealWindow;
        _maxHorizon = params.maxHorizon;
        _challengeWindow = params.challengeWindow;
        _escalationReplicas = params.escalationReplicas;
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
        // staked <= MAX96 (checked): the cast is exact. From block 2^32 on (decades away)
        // bondedAt stays at its maximum: such stake is in no draw (postJob refuses those
        // blocks) instead of wrapping into old ones.
        s.staked = uint96(staked);
        s.bondedAt = uint32(Math.min(block.number, type(uint32).max));
        _changeTotal(amount, true);
        emit Staked(msg.sender, amount, staked, block.number);
        _pull(amount);
    }

    /// @inheritdoc IStaking
    function unstake(uint256 amount) external nonReentrant {
        if (amount == 0) revert StakeZeroAmount();
        Stake storage s = _stakes[msg.sender];
        uint256 staked = s.staked;
        uint256 free = staked - _account(msg.sender).locked;
        if (amount > free) revert StakeInsufficient(free, amount);
        uint256 rest = staked - amount;
        if (rest != 0 && rest < _minStake) revert StakeBelowMinimum(rest, _minStake);
        // amount <= free <= staked < 2^96: the casts are exact.
        s.staked = uint96(rest);
        _changeTotal(amount, false);
        emit Unstaked(msg.sender, amount, rest);
        _send(amount);
    }

    // ------------------------------------------------------------------ jobs

    /// @inheritdoc IJobEscrow
    /// @dev No reentrancy guard needed: the only external call (the ERC-20 pull) comes last,
    /// after every effect, and moves funds into this contract.
    function postJob(JobSpec calldata spec) external payable returns (uint256 jobId) {
        return _post(spec, 0);
    }

    /// @inheritdoc IJobEscrow
    /// @dev No reentrancy guard needed, as for postJob: the one external call comes last.
    function postJobs(JobSpec[] calldata specs) external payable returns (uint256 firstJobId) {
        uint256 n = specs.length;
        if (n == 0 || n > MAX_BATCH) revert EscrowBatchSize(n, MAX_BATCH);
        // Checks: every spec, its encoding, then the value of the sum (n < 2^9 bounties of
        // < 2^96 each: the sum cannot overflow).
        uint256 sum = 0;
        uint256 offset = n * 0x20; // where the canonical encoding puts spec 0
        for (uint256 i = 0; i < n; ++i) {
            JobSpec calldata spec = specs[i];
            // The encoding first: the rules read the spec where the canonical encoding puts it.
            bytes memory err = _batchEncodingError(i, offset);
            if (err.length == 0) err = _specError(spec);
            if (err.length != 0) revert EscrowBatchSpecInvalid(i, err);
            sum += spec.bounty;
            offset += 0x1c0 + ((spec.inputLocation.length + 31) & ~uint256(31));
        }
        if (msg.data.length != 0x44 + offset) revert EscrowInvalidSpec("encoding");
        uint256 expectedValue = _asset == address(0) ? sum : 0;
        if (msg.value != expectedValue) revert EscrowWrongValue(msg.value, expectedValue);
        // Effects: one counter update, one slot and one JobPosted per job.
        uint256 draw = block.number << 32 | block.timestamp;
        Counter memory counter = _counter;
        firstJobId = counter.nextJobId;
        // Job ids are a counter from 1: 2^64 posts are out of reach.
        _counter.nextJobId = uint64(firstJobId + n);
        uint48 drawTotal = _drawTotal(counter);
        for (uint256 i = 0; i < n; ++i) {
            JobSpec calldata spec = specs[i];
            _jobs[firstJobId + i] = _jobOf(JobTermsLib.pack(spec, draw), drawTotal);
            _emitBatchJobPosted(firstJobId + i, draw, i, spec.inputLocation.length);
        }
        // Interaction: one pull of the sum.
        _pull(sum);
    }

    /// @inheritdoc IJobEscrow
    function postOptimisticJob(JobSpec calldata spec) external payable returns (uint256 jobId) {
        if (spec.replicas != 1) revert EscrowInvalidSpec("replicas");
        // The defendant's slash must cover the bond it returns to a consumer proven right.
        if (uint256(spec.collateral) * _slashBps / BPS < _bondOf(spec.bounty)) {
            revert EscrowInvalidSpec("collateral");
        }
        return _post(spec, JobTermsLib.OPTIMISTIC);
    }

    /// @inheritdoc IJobEscrow
    function challenge(uint256 jobId, JobSpec calldata spec, uint256 draw, uint256 replica)
        external
        payable
        nonReentrant
        returns (uint256 escalationId)
    {
        if (draw >> 64 != JobTermsLib.OPTIMISTIC) revert EscrowNotChallengeable(jobId);
        JobTerms memory terms = termsOf(spec, draw);
        Job memory job = _jobs[jobId];
        // A stored hash against the given terms' hash, not a balance.
        // slither-disable-next-line incorrect-equality
        if (job.specHash == bytes24(0) || job.specHash != bytes24(keccak256(abi.encode(terms)))) {
            revert EscrowJobNotFound(jobId);
        }
        if (spec.consumer != msg.sender) revert EscrowNotConsumer(jobId, msg.sender);
        // Only a taken (and so revealed) slot that is not challenged yet.
        if (job.committed == 0 || job.revealed == CHALLENGED) revert EscrowNotChallengeable(jobId);
        uint256 closes = uint256(spec.revealDeadline) + _challengeWindow;
        if (block.timestamp > closes) revert EscrowChallengeClosed(jobId, closes);
        address defendant = address(uint160(replica >> 96));
        uint256 lane = replica & (LANE_LIMIT - 1);
        if (_laneJob(_lanes[defendant][lane]) != jobId) {
            revert EscrowNotReplica(jobId, defendant, lane);
        }
        uint256 bond = _bondOf(spec.bounty);
        uint256 expectedValue = _asset == address(0) ? bond : 0;
        if (msg.value != expectedValue) revert EscrowWrongValue(msg.value, expectedValue);
        _jobs[jobId].revealed = CHALLENGED;
        escalationId = _postEscalation(spec, terms, bond);
        // jobId < 2^64 (a live job) and lane < LANE_LIMIT: the casts are exact.
        _escalations[escalationId] = Escalation(uint64(jobId), defendant, uint96(lane));
        emit JobChallenged(jobId, escalationId, defendant, lane, bond);
        _pull(bond);
    }

    /// @inheritdoc IJobEscrow
    function commit(uint256 jobId, JobTerms calldata terms, uint256 lane, bytes32 commitment)
        external
    {
        (Job memory job, uint256 drawnFlag) = _take(jobId, terms, lane, commitment);
        if (terms.optimistic()) {
            // The only slot: nobody can copy it, so the commitment is the result hash itself.
            _lanes[msg.sender][lane] = _revealedWord(jobId, commitment) | drawnFlag;
            job.revealed = 1;
            emit ReplicaRevealed(jobId, msg.sender, commitment);
        } else {
            _lanes[msg.sender][lane] =
                _laneWord(jobId, uint256(ReplicaStatus.Committed) | drawnFlag, commitment);
        }
        _jobs[jobId] = job;
    }

    /// @inheritdoc IJobEscrow
    function commitResult(uint256 jobId, JobTerms calldata terms, uint256 lane, bytes32 resultHash)
        external
    {
        // One replica, no challenge: the lone slot has nobody to copy from or to outvote,
        // so committing and revealing at once settles exactly as commit + reveal would.
        if (terms.replicas() != 1 || terms.optimistic() || terms.escalation()) {
            revert EscrowNotSoloJob(jobId);
        }
        (, uint256 drawnFlag) = _take(jobId, terms, lane, resultHash);
        emit ReplicaRevealed(jobId, msg.sender, resultHash);
        Slot[] memory slots = new Slot[](1);
        uint256 digest = _revealedWord(jobId, resultHash);
        slots[0] = Slot(msg.sender, lane, digest, drawnFlag != 0);
        delete _jobs[jobId];
        _settleFilled(jobId, terms, slots, resultHash, digest);
    }

    /// @dev The checks and effects a commit shares with commitResult: reverts unless
    /// msg.sender may take a slot of `jobId` in `lane` now, locks the collateral, emits
    /// ReplicaCommitted and returns the job with the slot counted, and the DRAWN flag.
    function _take(uint256 jobId, JobTerms calldata terms, uint256 lane, bytes32 commitment)
        private
        returns (Job memory job, uint256 drawnFlag)
    {
        job = _load(jobId, terms);
        if (block.timestamp > terms.commitDeadline()) {
            revert EscrowCommitClosed(jobId, terms.commitDeadline());
        }
        if (terms.escalation() && _escalations[jobId].defendant == msg.sender) {
            revert EscrowExcluded(jobId, msg.sender);
        }
        Stake memory s = _stakes[msg.sender];
        if (s.staked < _minStake) revert StakeBelowMinimum(s.staked, _minStake);
        // The draw is checked before the slots: a provider that was not drawn is told so,
        // whether or not the job has filled meanwhile.
        bool drawn = _requireDrawn(jobId, job.drawTotal, terms, s);
        if (job.committed >= terms.replicas()) revert EscrowJobFull(jobId);
        if (lane >= LANE_LIMIT) revert EscrowParameterOutOfRange("lane", lane);
        uint256 word = _lanes[msg.sender][lane];
        if (word & PHASE_MASK != 0) revert EscrowLaneBusy(msg.sender, lane, _laneJob(word));
        _lock(s.staked, terms.collateral(), terms.minReputation());
        drawnFlag = drawn ? DRAWN : 0;
        emit ReplicaCommitted(jobId, msg.sender, lane, commitment, drawn);
        // committed < replicas <= MAX_REPLICAS_LIMIT: no uint8 overflow.
        ++job.committed;
    }

    /// @inheritdoc IJobEscrow
    function reveal(
        uint256 jobId,
        JobTerms calldata terms,
        uint256 lane,
        bytes32 resultHash,
        bytes32 salt,
        uint256[] calldata others,
        bytes32 quorumHash
    ) external {
        Job memory job = _load(jobId, terms);
        uint256 drawnFlag = _checkReveal(jobId, job, terms, lane, resultHash, salt);
        uint256 revealedWord = _revealedWord(jobId, resultHash);
        emit ReplicaRevealed(jobId, msg.sender, resultHash);
        // revealed < committed == replicas <= MAX_REPLICAS_LIMIT: no uint8 overflow.
        if (job.revealed + 1 < terms.replicas()) {
            _lanes[msg.sender][lane] = revealedWord | drawnFlag;
            _jobs[jobId].revealed = job.revealed + 1;
            return;
        }
        Slot memory self = Slot(msg.sender, lane, revealedWord, drawnFlag != 0);
        _settleLastReveal(jobId, terms, self, resultHash, others, quorumHash);
    }

    /// @inheritdoc IJobEscrow
    function finalize(
        uint256 jobId,
        JobTerms calldata terms,
        uint256[] calldata replicas,
        bytes32 resultHash
    ) external {
        Job memory job = _load(jobId, terms);
        // A slot counter against the job's replica count, not a balance.
        // slither-disable-next-line incorrect-equality
        bool filled = job.committed == terms.replicas();
        if (!filled && block.timestamp <= terms.commitDeadline()) {
            revert EscrowNotFinalizable(jobId, terms.commitDeadline() + 1);
        }
        // The last reveal settles a filled job whose replicas all revealed: a filled job that
        // is still live has a reveal missing, and waits for the reveal deadline. An optimistic
        // job waits for its challenge window too, and a challenged one for its escalation.
        if (job.revealed == CHALLENGED) revert EscrowUnderChallenge(jobId);
        uint256 settles = terms.revealDeadline() + (terms.optimistic() ? _challengeWindow : 0);
        if (filled && block.timestamp <= settles) revert EscrowNotFinalizable(jobId, settles + 1);
        if (replicas.length != job.committed) {
            revert EscrowWrongReplicaSet(jobId, replicas.length, job.committed);
        }
        Slot[] memory slots = _readSlots(jobId, replicas, Slot(address(0), 0, 0, false));
        delete _jobs[jobId];
        if (filled) {
            _settleFilled(jobId, terms, slots, resultHash, _revealedWord(jobId, resultHash));
            return;
        }
        // Unfilled: every committer released without penalty, the bounty refunded.
        for (uint256 i = 0; i < slots.length; ++i) {
            _settleReplica(jobId, slots[i], Settlement.Released, terms.collateral(), 0, 0);
        }
        _creditConsumer(terms.consumer(), jobId, terms.bounty());
        emit JobFinalized(jobId, Outcome.Unfilled, bytes32(0), 0, 0);
        if (terms.escalation()) _resolveChallenge(jobId, terms, bytes32(0));
    }

    // ------------------------------------------------------------------ balances

    /// @inheritdoc IJobEscrow
    function openAccount(uint256 lanes) external {
        if (lanes > MAX_OPEN_LANES) revert EscrowParameterOutOfRange("lanes", lanes);
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
        returns (uint256 staked, uint256 locked, uint256 bondedAt)
    {
        Stake memory s = _stakes[provider];
        return (s.staked, _account(provider).locked, s.bondedAt);
    }

    /// @inheritdoc IStaking
    function totalStake() external view returns (uint256) {
        return _counter.totalStake;
    }

    /// @inheritdoc IJobEscrow
    function burned() external view returns (uint256) {
        return _burned;
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
        returns (bytes24 specHash, uint8 committed, uint8 revealed, uint256 drawTotal)
    {
        Job memory job = _jobs[jobId];
        // A stored hash prefix tested for "no job", not a balance.
        // slither-disable-next-line incorrect-equality
        uint256 total = job.specHash == bytes24(0) ? 0 : DrawLib.decodeTotal(job.drawTotal);
        return (job.specHash, job.committed, job.revealed, total);
    }

    /// @inheritdoc IJobEscrow
    function drawOf(uint256 jobId, JobTerms calldata terms, address provider)
        external
        view
        returns (bool eligible, bool drawn, uint256 eligibleFrom)
    {
        Job memory job = _load(jobId, terms);
        Stake memory s = _stakes[provider];
        if (s.bondedAt >= terms.postBlock()) return (false, false, 0);
        if (terms.escalation() && _escalations[jobId].defendant == provider) {
            return (false, false, 0);
        }
        bytes32 postHash = _blockHash(terms.postBlock());
        if (postHash == bytes32(0)) {
            // In the post's own block the draw is not fixed yet: ask again a second later.
            return (false, false, block.number <= terms.postBlock() ? block.timestamp + 1 : 0);
        }
        uint256 u = DrawLib.ticket(postHash, jobId, provider);
        uint256 total = DrawLib.decodeTotal(job.drawTotal);
        (eligible, drawn) = _check(u, s.staked, total, terms);
        eligibleFrom = _eligibleFrom(u, s.staked, total, terms);
    }

    /// @inheritdoc IJobEscrow
    function replicaOf(uint256 jobId, address provider, uint256 lane)
        external
        view
        returns (ReplicaStatus)
    {
        uint256 word = _lanes[provider][lane];
        if (word & PHASE_MASK == 0 || _laneJob(word) != jobId) return ReplicaStatus.None;
        return ReplicaStatus(word & PHASE_MASK);
    }

    /// @inheritdoc IJobEscrow
    function laneJobOf(address provider, uint256 lane) external view returns (uint256) {
        uint256 word = _lanes[provider][lane];
        return word & PHASE_MASK == 0 ? 0 : _laneJob(word);
    }

    /// @inheritdoc IJobEscrow
    function nextJobId() external view returns (uint256) {
        return _counter.nextJobId;
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
    function resultPrefixOf(uint256 jobId) public view returns (bytes memory) {
        return abi.encode(block.chainid, address(this), jobId);
    }

    /// @inheritdoc IJobEscrow
    function resultHashOf(uint256 jobId, bytes calldata output) external view returns (bytes32) {
        return sha256(bytes.concat(resultPrefixOf(jobId), output));
    }

    /// @inheritdoc IJobEscrow
    function specHashOf(JobSpec calldata spec, uint256 draw) external pure returns (bytes32) {
        return keccak256(abi.encode(termsOf(spec, draw)));
    }

    /// @inheritdoc IJobEscrow
    function termsOf(JobSpec calldata spec, uint256 draw) public pure returns (JobTerms memory) {
        if (draw >> 66 != 0) revert EscrowParameterOutOfRange("draw", draw);
        return JobTermsLib.pack(spec, draw);
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
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @inheritdoc IJobEscrow
    function maxReplicas() external view returns (uint256) {
        return _maxReplicas;
    }

    /// @inheritdoc IJobEscrow
    function windows()
        external
        view
        returns (uint256 minCommitWindow, uint256 minRevealWindow, uint256 maxHorizon)
    {
        return (_minCommitWindow, _minRevealWindow, _maxHorizon);
    }

    /// @inheritdoc IJobEscrow
    function optimisticParams()
        external
        view
        returns (uint256 challengeWindow, uint256 escalationReplicas)
    {
        return (_challengeWindow, _escalationReplicas);
    }

    /// @inheritdoc IJobEscrow
    function escalationOf(uint256 escalationId)
        external
        view
        returns (uint256 jobId, address defendant, uint256 lane)
    {
        Escalation memory e = _escalations[escalationId];
        return (e.parentId, e.defendant, e.lane);
    }

    // ------------------------------------------------------------------ posts

    /// @dev Posts `spec` as a job of `kind` (JobTermsLib's OPTIMISTIC, or 0) and escrows its
    /// bounty.
    function _post(JobSpec calldata spec, uint256 kind) private returns (uint256 jobId) {
        bytes memory err = _specError(spec);
        if (err.length != 0) {
            assembly ("memory-safe") {
                revert(add(err, 0x20), mload(err))
            }
        }
        uint256 expectedValue = _asset == address(0) ? spec.bounty : 0;
        if (msg.value != expectedValue) revert EscrowWrongValue(msg.value, expectedValue);
        // The draw is fixed by this block's hash (unknown to any transaction in it, see the
        // seed notes) against the total stake as this block found it.
        uint256 draw = kind << 64 | block.number << 32 | block.timestamp;
        jobId = _newJob(JobTermsLib.pack(spec, draw));
        _emitJobPosted(jobId, draw, spec.inputLocation.length);
        _pull(spec.bounty);
    }

    /// @dev Stores a new job with `terms` (their draw is this block's) and returns its id.
    function _newJob(JobTerms memory terms) private returns (uint256 jobId) {
        Counter memory counter = _counter;
        jobId = counter.nextJobId;
        // Job ids are a counter from 1: 2^64 posts are out of reach.
        _counter.nextJobId = uint64(jobId + 1);
        _jobs[jobId] = _jobOf(terms, _drawTotal(counter));
    }

    /// @dev The draw's denominator of a job posted now: the total stake as this block found
    /// it (see Counter).
    function _drawTotal(Counter memory counter) private view returns (uint48) {
        // Block numbers compared, not balances.
        // slither-disable-next-line incorrect-equality
        return counter.changedAt == block.number
            ? counter.blockStartTotal
            : DrawLib.encodeTotal(counter.totalStake);
    }

    /// @dev A new job's slot: its terms' hash prefix and the draw's denominator.
    function _jobOf(JobTerms memory terms, uint48 drawTotal) private pure returns (Job memory) {
        return Job({
            specHash: bytes24(keccak256(abi.encode(terms))),
            committed: 0,
            revealed: 0,
            drawTotal: drawTotal
        });
    }

    /// @dev Posts the escalation of a challenged optimistic job `spec`: the same kernel and
    /// input for `_escalationReplicas` fresh replicas, with `bond` as its bounty and the
    /// parent's collateral and window lengths from now, drawn from this block.
    function _postEscalation(JobSpec calldata spec, JobTerms memory parent, uint256 bond)
        private
        returns (uint256 escalationId)
    {
        JobSpec memory e = spec;
        uint256 m = _escalationReplicas;
        // The parent passed _specError: its windows are positive and at most the horizon, so
        // the deadlines fit 40 bits (and 32 until 2106).
        uint256 postedAt = (parent.rules >> 160) & type(uint32).max;
        e.commitDeadline = uint40(block.timestamp + (spec.commitDeadline - postedAt));
        e.revealDeadline = uint40(e.commitDeadline + (spec.revealDeadline - spec.commitDeadline));
        // m <= MAX_REPLICAS_LIMIT; bond <= collateral < 2^96 (postOptimisticJob): exact casts.
        (e.replicas, e.quorum, e.bounty) = (uint8(m), uint8(m / 2 + 1), uint96(bond));
        uint256 draw = JobTermsLib.ESCALATION << 64 | block.number << 32 | block.timestamp;
        escalationId = _newJob(JobTermsLib.escalate(parent, e, draw));
        emit JobPosted(escalationId, e.consumer, draw, e);
    }

    /// @dev The bond of a challenge: what the escalation's replicas share, each paid what the
    /// optimistic job's one replica is.
    function _bondOf(uint256 bounty) private view returns (uint256) {
        return bounty * _escalationReplicas;
    }

    /// @dev Settles the optimistic job that escalation `escalationId` (just settled with
    /// `resultHash`: the quorum's, zero without one) was posted for. A quorum for another
    /// hash than the defendant's overturns it: the defendant is slashed, the consumer gets
    /// its bounty back and its bond (out of the slash; the rest is burned). Otherwise
    /// (the same hash, no quorum, unfilled) the defendant is paid as if unchallenged and the
    /// bond went to the escalation's winners (or back to the consumer without a quorum).
    function _resolveChallenge(uint256 escalationId, JobTerms calldata terms, bytes32 resultHash)
        private
    {
        Escalation memory e = _escalations[escalationId];
        delete _escalations[escalationId];
        uint256 jobId = e.parentId;
        delete _jobs[jobId];
        uint256 word = _lanes[e.defendant][e.lane];
        Slot memory slot = Slot(e.defendant, e.lane, word & ~DRAWN, word & DRAWN != 0);
        uint256 bond = terms.bounty();
        uint256 bounty = bond / _escalationReplicas;
        uint256 collateral = terms.collateral();
        bool overturned = resultHash != bytes32(0) && slot.state != _revealedWord(jobId, resultHash);
        if (!overturned) {
            _settleReplica(jobId, slot, Settlement.Completed, collateral, 0, bounty);
            emit JobFinalized(jobId, Outcome.Completed, resultHash, 1, 0);
            return;
        }
        uint256 penalty = collateral * _slashBps / BPS;
        _settleReplica(jobId, slot, Settlement.Slashed, collateral, penalty, 0);
        _creditConsumer(terms.consumer(), jobId, bounty + bond);
        // penalty >= bond (postOptimisticJob): the slash pays the bond back, the rest burns.
        _changeTotal(penalty, false);
        _burned += penalty - bond;
        emit JobFinalized(jobId, Outcome.Overturned, resultHash, 0, penalty);
    }

    /// @dev Reverts unless the caller's stake is in the job's draw and its ticket is
    /// eligible now; returns whether it was drawn at the base rate.
    function _requireDrawn(uint256 jobId, uint48 drawTotal, JobTerms calldata terms, Stake memory s)
        private
        view
        returns (bool drawn)
    {
        // The same clock as the draw's denominator: stake counts from the block after it
        // was bonded, for both.
        uint256 postBlock = terms.postBlock();
        if (s.bondedAt >= postBlock) revert EscrowStakeTooNew(jobId, s.bondedAt, postBlock);
        bytes32 postHash = _blockHash(terms.postBlock());
        if (postHash == bytes32(0)) {
            if (block.number <= terms.postBlock()) revert EscrowDrawNotFixed(jobId);
            revert EscrowDrawExpired(jobId, terms.postBlock());
        }
        uint256 u = DrawLib.ticket(postHash, jobId, msg.sender);
        uint256 total = DrawLib.decodeTotal(drawTotal);
        bool eligible;
        (eligible, drawn) = _check(u, s.staked, total, terms);
        if (!eligible) {
            revert EscrowNotDrawn(jobId, msg.sender, _eligibleFrom(u, s.staked, total, terms));
        }
    }

    /// @dev The ticket `u` with `staked` against the job's threshold now.
    function _check(uint256 u, uint256 staked, uint256 total, JobTerms calldata terms)
        private
        view
        returns (bool eligible, bool drawn)
    {
        uint256 step = DrawLib.steps(block.timestamp, terms.postedAt(), terms.commitDeadline());
        return DrawLib.check(u, total, terms.replicas(), staked, step);
    }

    function _eligibleFrom(uint256 u, uint256 staked, uint256 total, JobTerms calldata terms)
        private
        pure
        returns (uint256)
    {
        return DrawLib.eligibleFrom(
            u, total, terms.replicas(), staked, terms.postedAt(), terms.commitDeadline()
        );
    }

    /// @dev The hash of block `number`: BLOCKHASH for the last 256 blocks, else the EIP-2935
    /// history contract (the last 8191), else zero (also for this block and later ones).
    function _blockHash(uint256 number) private view returns (bytes32 hash) {
        if (number >= block.number) return bytes32(0);
        if (block.number - number <= 256) return blockhash(number);
        (bool ok, bytes memory data) = BLOCK_HASH_HISTORY.staticcall(abi.encode(number));
        if (ok && data.length == 32) hash = abi.decode(data, (bytes32));
    }

    /// @dev Reverts unless msg.sender may reveal `resultHash` with `salt` from `lane` now;
    /// returns the lane's DRAWN flag.
    function _checkReveal(
        uint256 jobId,
        Job memory job,
        JobTerms calldata terms,
        uint256 lane,
        bytes32 resultHash,
        bytes32 salt
    ) private view returns (uint256 drawnFlag) {
        if (block.timestamp > terms.revealDeadline()) {
            revert EscrowRevealClosed(jobId, terms.revealDeadline());
        }
        if (job.committed < terms.replicas()) {
            if (block.timestamp > terms.commitDeadline()) revert EscrowJobUnfilled(jobId);
            revert EscrowRevealNotOpen(jobId, job.committed, terms.replicas());
        }
        uint256 word = _lanes[msg.sender][lane];
        drawnFlag = word & DRAWN;
        bytes32 commitment = commitmentOf(jobId, msg.sender, resultHash, salt);
        uint256 flags = uint256(ReplicaStatus.Committed) | drawnFlag;
        if (word != _laneWord(jobId, flags, commitment)) {
            // Say why: not this job's committed slot, or a wrong opening.
            _requireStatus(jobId, word, ReplicaStatus.Committed);
            revert EscrowCommitmentMismatch(jobId, msg.sender);
        }
    }

    // ------------------------------------------------------------------ settlement

    /// @dev The reveal that completes the job: every slot revealed (the job is filled),
    /// `others` are the other slots. Settles the job as finalize would; the settlement frees
    /// the caller's lane. The winning hash is the caller's if it has the quorum, else
    /// `quorumHash` (checked by _settleFilled).
    function _settleLastReveal(
        uint256 jobId,
        JobTerms calldata terms,
        Slot memory self,
        bytes32 resultHash,
        uint256[] calldata others,
        bytes32 quorumHash
    ) private {
        if (others.length + 1 != terms.replicas()) {
            revert EscrowWrongReplicaSet(jobId, others.length, terms.replicas() - 1);
        }
        // Read before _readSlots: it zeroes the state of a duplicate provider's slots, and
        // `self` is one of them by reference.
        uint256 mine = self.state;
        Slot[] memory slots = _readSlots(jobId, others, self);
        delete _jobs[jobId];
        if (_count(slots, mine) >= terms.quorum()) {
            _settleFilled(jobId, terms, slots, resultHash, mine);
        } else {
            _settleFilled(jobId, terms, slots, quorumHash, _revealedWord(jobId, quorumHash));
        }
    }

    /// @dev Settles every slot of a filled job, refunds the consumer when there is no
    /// quorum, burns what was slashed and emits JobFinalized. `digest` is
    /// `_revealedWord(jobId, resultHash)`.
    function _settleFilled(
        uint256 jobId,
        JobTerms calldata terms,
        Slot[] memory slots,
        bytes32 resultHash,
        uint256 digest
    ) private {
        uint256 winners = _count(slots, digest);
        bool quorum = winners >= terms.quorum();
        if (!quorum) {
            if (_hasQuorum(slots, terms.quorum())) revert EscrowNotQuorumResult(jobId, resultHash);
            (digest, winners, resultHash) = (0, 0, bytes32(0));
        }
        uint256 slashed = _settleSlots(jobId, terms, slots, digest, winners);
        if (!quorum) _creditConsumer(terms.consumer(), jobId, terms.bounty());
        if (slashed > 0) _burn(slashed);
        emit JobFinalized(
            jobId, quorum ? Outcome.Completed : Outcome.NoQuorum, resultHash, winners, slashed
        );
        if (terms.escalation()) _resolveChallenge(jobId, terms, resultHash);
    }

    /// @dev Settles each slot of a filled job: those whose state is `digest` share the
    /// bounty (`winners` > 0: a quorum), the first one (lowest address) also gets the
    /// remainder so no wei is lost; other revealers are slashed if there is a quorum and
    /// released if not; non-revealers (and duplicates) are slashed as missed. Returns the
    /// total slashed.
    function _settleSlots(
        uint256 jobId,
        JobTerms calldata terms,
        Slot[] memory slots,
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
        for (uint256 i = 0; i < slots.length; ++i) {
            uint256 state = slots[i].state;
            Settlement settlement = Settlement.Missed;
            uint256 taken = split[0];
            uint256 payout = 0;
            if (winners > 0 && state == digest) {
                (settlement, taken, payout, split[2]) =
                (Settlement.Completed, 0, split[1] + split[2], 0);
            } else if (state & PHASE_MASK == uint256(ReplicaStatus.Revealed)) {
                settlement = winners > 0 ? Settlement.Slashed : Settlement.Released;
                if (winners == 0) taken = 0;
            }
            slashed += taken;
            _settleReplica(jobId, slots[i], settlement, split[3], taken, payout);
        }
    }

    /// @dev Frees the slot's lane, unlocks `collateral`, takes `penalty` of its stake,
    /// credits `payout` and counts the settlement in its reputation (a completion only if
    /// the slot was drawn at the base rate).
    function _settleReplica(
        uint256 jobId,
        Slot memory slot,
        Settlement settlement,
        uint256 collateral,
        uint256 penalty,
        uint256 payout
    ) private {
        address provider = slot.provider;
        _lanes[provider][slot.lane] = LANE_FREE;
        Account memory a = _account(provider);
        // The commit locked exactly `collateral` in this account: no underflow.
        a.locked -= uint96(collateral);
        if (settlement == Settlement.Completed) {
            if (slot.drawn) a.completed = _inc32(a.completed);
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

    /// @dev Moves `amount` of slashed stake out of the total stake into the burned total.
    function _burn(uint256 amount) private {
        _changeTotal(amount, false);
        _burned += amount;
    }

    /// @dev Adds (`up`) or takes `amount` to or from the total stake, first keeping the total
    /// as this block found it for the draws of posts later in the block.
    function _changeTotal(uint256 amount, bool up) private {
        Counter memory c = _counter;
        if (c.changedAt != block.number) {
            c.blockStartTotal = DrawLib.encodeTotal(c.totalStake);
            // Block numbers fit 32 bits (postJob checks it too).
            c.changedAt = uint32(block.number);
        }
        uint256 total = up ? c.totalStake + amount : c.totalStake - amount;
        if (total > type(uint112).max) revert StakeAmountTooLarge(amount);
        // total < 2^112 (checked): the cast is exact. A decrease is of stake counted in it.
        c.totalStake = uint112(total);
        _counter = c;
    }

    /// @dev Locks `collateral` of the caller's free stake after the reputation check.
    function _lock(uint256 staked, uint256 collateral, uint256 minReputation) private {
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

    /// @dev The job's slots in strictly ascending `uint160(provider) << 96 | lane` order,
    /// with their lane words: each `listed` entry (its lane must hold `jobId`) and, if
    /// `self.provider` is not zero, `self` (the last revealer, whose lane the caller
    /// checked). Reverts unless the merged list is strictly ascending; the caller checked
    /// that its length is the number of slots, so it is exactly the job's slots. The slots
    /// of a provider that holds more than one come back with state 0 (see _dropDuplicates).
    function _readSlots(uint256 jobId, uint256[] calldata listed, Slot memory self)
        private
        view
        returns (Slot[] memory slots)
    {
        uint256 n = listed.length;
        bool withSelf = self.provider != address(0);
        slots = new Slot[](withSelf ? n + 1 : n);
        uint256 selfKey = withSelf ? _key(self.provider, self.lane) : 0;
        uint256 previous = 0;
        uint256 j = 0;
        for (uint256 i = 0; i < n; ++i) {
            uint256 key = listed[i];
            if (withSelf && j == i && selfKey < key) {
                if (selfKey <= previous) revert EscrowWrongReplicaSet(jobId, n, n);
                (slots[j], previous) = (self, selfKey);
                ++j;
            }
            if (key <= previous) revert EscrowWrongReplicaSet(jobId, n, n);
            previous = key;
            slots[j] = _slotAt(jobId, key);
            ++j;
        }
        if (j < slots.length) {
            // self is above every listed entry (listed[n - 1] == self fails here).
            if (selfKey <= previous) revert EscrowWrongReplicaSet(jobId, n, n);
            slots[j] = self;
        }
        _dropDuplicates(slots);
    }

    /// @dev The slot held by the lane `key` names; reverts unless it holds `jobId`.
    function _slotAt(uint256 jobId, uint256 key) private view returns (Slot memory) {
        address provider = address(uint160(key >> 96));
        uint256 lane = key & (LANE_LIMIT - 1);
        uint256 word = _lanes[provider][lane];
        if (word & PHASE_MASK == 0 || _laneJob(word) != jobId) {
            revert EscrowNotReplica(jobId, provider, lane);
        }
        return Slot(provider, lane, word & ~DRAWN, word & DRAWN != 0);
    }

    /// @dev A provider holding two or more slots of one job (sorted, so they are adjacent)
    /// gets none of them counted: their states are zeroed (settled as missed).
    function _dropDuplicates(Slot[] memory slots) private pure {
        for (uint256 i = 1; i < slots.length; ++i) {
            if (slots[i].provider == slots[i - 1].provider) {
                slots[i - 1].state = 0;
                slots[i].state = 0;
            }
        }
    }

    function _count(Slot[] memory slots, uint256 value) private pure returns (uint256 n) {
        for (uint256 i = 0; i < slots.length; ++i) {
            if (slots[i].state == value) ++n;
        }
    }

    /// @dev Whether any revealed digest occurs at least `quorum` times (k <= 16: O(k^2)).
    function _hasQuorum(Slot[] memory slots, uint256 quorum) private pure returns (bool) {
        for (uint256 i = 0; i < slots.length; ++i) {
            uint256 state = slots[i].state;
            if (state & PHASE_MASK != uint256(ReplicaStatus.Revealed)) continue;
            if (_count(slots, state) >= quorum) return true;
        }
        return false;
    }

    // ------------------------------------------------------------------ helpers

    /// @dev The error postJob reverts with for `spec` (the rules in IJobEscrow.postJob but
    /// the encoding), empty if it passes. Returned rather than thrown, so that postJobs can
    /// name the spec's index.
    function _specError(JobSpec calldata spec) private view returns (bytes memory err) {
        if (spec.consumer != msg.sender) return _invalidSpec("consumer");
        if (spec.bounty == 0) return _invalidSpec("bounty");
        if (spec.replicas == 0 || spec.replicas > _maxReplicas) return _invalidSpec("replicas");
        // The strict majority: at most one hash can win, and one dissenter cannot force
        // NoQuorum on a job of three or more.
        if (spec.quorum != spec.replicas / 2 + 1) return _invalidSpec("quorum");
        if (spec.inputLocation.length > MAX_INPUT_LOCATION) return _invalidSpec("inputLocation");
        if (spec.minReputation > type(uint16).max) return _invalidSpec("minReputation");
        if (block.number > type(uint32).max) {
            return abi.encodeWithSelector(
                EscrowParameterOutOfRange.selector, bytes32("block"), block.number
            );
        }
        uint256 commitWindow =
            spec.commitDeadline > block.timestamp ? spec.commitDeadline - block.timestamp : 0;
        if (commitWindow < _minCommitWindow) {
            return abi.encodeWithSelector(
                EscrowWindowTooShort.selector, bytes32("commit"), commitWindow, _minCommitWindow
            );
        }
        uint256 revealWindow = spec.revealDeadline > spec.commitDeadline
            ? spec.revealDeadline - spec.commitDeadline
            : 0;
        if (revealWindow < _minRevealWindow) {
            return abi.encodeWithSelector(
                EscrowWindowTooShort.selector, bytes32("reveal"), revealWindow, _minRevealWindow
            );
        }
        uint256 latest = block.timestamp + _maxHorizon;
        if (latest > type(uint32).max) latest = type(uint32).max;
        if (spec.revealDeadline > latest) {
            return abi.encodeWithSelector(
                EscrowDeadlineTooFar.selector, uint256(spec.revealDeadline), latest
            );
        }
        // Passes: `err` stays the empty default (no allocation).
    }

    function _invalidSpec(bytes32 reason) private pure returns (bytes memory) {
        return abi.encodeWithSelector(EscrowInvalidSpec.selector, reason);
    }

    /// @dev Emits JobPosted(jobId, msg.sender, draw, spec) with the calldata as its data: for
    /// the canonical encoding of postJob(spec) (checked here: one head offset, the bytes
    /// right after the tuple head, nothing after them), msg.data[4:] is abi.encode(spec)
    /// except for the padding after inputLocation, which is zeroed. Every field was
    /// range-checked when _specError and pack read it.
    function _emitJobPosted(uint256 jobId, uint256 draw, uint256 locationLength) private {
        bytes32 topic = JobPosted.selector;
        bool canonical;
        assembly ("memory-safe") {
            let padded := and(add(locationLength, 31), not(31))
            canonical := and(
                and(eq(calldataload(4), 0x20), eq(calldataload(0x1a4), 0x1a0)),
                eq(calldatasize(), add(0x1e4, padded))
            )
        }
        if (!canonical) revert EscrowInvalidSpec("encoding");
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let size := sub(calldatasize(), 4)
            calldatacopy(ptr, 4, size)
            mstore(add(ptr, add(0x1e0, locationLength)), 0)
            log4(ptr, size, topic, jobId, caller(), draw)
        }
    }

    /// @dev EscrowInvalidSpec("encoding") if spec `index` of postJobs(specs) is not where
    /// the canonical encoding puts it: its offset (from the array's first word) `offset`,
    /// its inputLocation right after its tuple head. Empty if it is.
    function _batchEncodingError(uint256 index, uint256 offset)
        private
        pure
        returns (bytes memory err)
    {
        bool canonical;
        assembly ("memory-safe") {
            canonical := and(
                and(
                    eq(calldataload(4), 0x20),
                    eq(calldataload(add(0x44, mul(index, 0x20))), offset)
                ),
                eq(calldataload(add(0x1c4, offset)), 0x1a0)
            )
        }
        if (!canonical) err = _invalidSpec("encoding");
    }

    /// @dev Emits JobPosted(jobId, msg.sender, draw, specs[index]) for postJobs(specs),
    /// whose encoding was checked canonical (_batchEncodingError): the data is 0x20 followed
    /// by the spec's tuple as it lies in the calldata, the padding after inputLocation
    /// zeroed: abi.encode(spec), byte for byte what postJob emits.
    function _emitBatchJobPosted(uint256 jobId, uint256 draw, uint256 index, uint256 locationLength)
        private
    {
        bytes32 topic = JobPosted.selector;
        assembly ("memory-safe") {
            let start := add(0x44, calldataload(add(0x44, mul(index, 0x20))))
            let size := add(0x1c0, and(add(locationLength, 31), not(31)))
            let ptr := mload(0x40)
            mstore(ptr, 0x20)
            calldatacopy(add(ptr, 0x20), start, size)
            mstore(add(ptr, add(0x1e0, locationLength)), 0)
            log4(ptr, add(size, 0x20), topic, jobId, caller(), draw)
        }
    }

    function _load(uint256 jobId, JobTerms calldata terms) private view returns (Job memory job) {
        job = _jobs[jobId];
        // A stored hash against the given terms' hash, not a balance.
        // slither-disable-next-line incorrect-equality
        if (job.specHash == bytes24(0) || job.specHash != bytes24(keccak256(abi.encode(terms)))) {
            revert EscrowJobNotFound(jobId);
        }
    }

    /// @dev The caller's lane `word` must hold `jobId` in phase `expected`.
    function _requireStatus(uint256 jobId, uint256 word, ReplicaStatus expected) private view {
        ReplicaStatus status = ReplicaStatus(word & PHASE_MASK);
        if (status != ReplicaStatus.None && _laneJob(word) != jobId) status = ReplicaStatus.None;
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

    /// @dev Takes `amount` of the asset from the caller (ETH arrived as msg.value). The
    /// token must move exactly `amount` into this contract.
    function _pull(uint256 amount) private {
        if (_asset == address(0)) return;
        IERC20 token = IERC20(_asset);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 afterwards = token.balanceOf(address(this));
        uint256 received = afterwards > before ? afterwards - before : 0;
        if (received != amount) revert EscrowTokenNotExact(amount, received);
    }

    /// @dev Sends `amount` of the asset to the caller. Only withdraw and unstake call it,
    /// after taking `amount` off the caller's own balance or free stake. The token must move
    /// exactly `amount` out of this contract.
    function _send(uint256 amount) private {
        if (_asset == address(0)) {
            // The recipient is msg.sender, paid what the books already took off its account.
            // slither-disable-next-line arbitrary-send-eth
            (bool ok,) = msg.sender.call{value: amount}("");
            if (!ok) revert EscrowEtherTransferFailed(msg.sender, amount);
            return;
        }
        IERC20 token = IERC20(_asset);
        uint256 before = token.balanceOf(address(this));
        token.safeTransfer(msg.sender, amount);
        uint256 afterwards = token.balanceOf(address(this));
        uint256 sent = before > afterwards ? before - afterwards : 0;
        if (sent != amount) revert EscrowTokenNotExact(amount, sent);
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
    function _laneWord(uint256 jobId, uint256 flags, bytes32 payload)
        private
        pure
        returns (uint256)
    {
        return (uint256(payload) >> PAYLOAD_SHIFT << PAYLOAD_SHIFT)
            | (uint256(uint64(jobId)) << JOB_SHIFT) | flags;
    }

    /// @dev What a revealed replica stores (without its DRAWN flag): keccak256 of the result
    /// hash (so finalize can check the full `resultHash` it is given against the stored 184
    /// bits).
    function _revealedWord(uint256 jobId, bytes32 resultHash) private pure returns (uint256) {
        return _laneWord(jobId, uint256(ReplicaStatus.Revealed), keccak256(abi.encode(resultHash)));
    }

    function _laneJob(uint256 word) private pure returns (uint256) {
        return uint64(word >> JOB_SHIFT);
    }

    /// @dev A replica list entry: the provider in the high 160 bits, the lane below.
    function _key(address provider, uint256 lane) private pure returns (uint256) {
        return uint256(uint160(provider)) << 96 | lane;
    }
}
