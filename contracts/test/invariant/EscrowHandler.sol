// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "../utils/Vm.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";
import {TestToken} from "../../src/test/TestToken.sol";

/// @notice Drives a market at random with only the calls the v2 rules allow: stakes,
/// unstakes, posts (each in its own block, sealed with its own hash), commits by providers
/// the lot makes
/// eligible (honest or not, sometimes a second slot of the same job), reveals (the last one
/// settles), finalizes after deadlines, withdrawals, openAccount, time and blocks. It keeps its own
/// model of what the protocol owes each account, computed from the rules independently of
/// the contract's bookkeeping, including the burned total and every consumer's refunds.
/// Stakes, unstakes and slashing settlements may share a block with a later post (only posts
/// move the chain on): the model's draw takes the total as that block found it, and stake
/// bonded in that block is not in the post's draw (bondedAt < postBlock: block numbers, as
/// for the total; `warp` moves time without moving blocks).
contract EscrowHandler {
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MIN_STAKE = 1 ether;
    uint256 internal constant DOUBLINGS = 8;
    uint256 internal constant LANES = 7;

    JobEscrow public immutable escrow;
    TestToken public immutable token; // zero in ETH mode

    address[] public providers;
    address[] public consumers;

    struct Slot {
        address provider;
        uint256 lane;
        uint8 phase; // 1 committed, 2 revealed
        bool drawn;
        bytes32 result;
    }

    struct JobRec {
        uint256 id;
        bool live;
        uint256 postedAt;
        uint256 draw; // postBlock << 32 | postedAt
        uint256 drawTotal; // the model's total stake at the post, rounded up as the job stores it
        Slot[] slots;
    }

    JobRec[] internal _jobs;
    IJobEscrow.JobSpec[] internal _specs;
    /// @dev The live job in each provider's lane, 0 if free.
    mapping(address => mapping(uint256 lane => uint256 jobId)) public laneJob;

    // The model: what the contract must hold and owe.
    uint256 public ghostLiveBounties;
    uint256 public ghostTotalStake;
    /// @dev The model's total stake as each block found it (before any of its transactions
    /// changed it), kept for the blocks whose transactions changed the total: a post's draw
    /// is against this total, not against stake moved earlier in the post's block.
    mapping(uint256 blockNumber => bool) internal _totalMovedIn;
    mapping(uint256 blockNumber => uint256) internal _totalAtBlockStart;
    uint256 public ghostBurned;
    mapping(address => uint256) public ghostOwed; // credited minus withdrawn
    mapping(address => uint256) public ghostStaked;
    mapping(address => uint256) public ghostLocked;
    mapping(address => uint256) public ghostBondedAt;
    /// @dev The timestamp of the block in `ghostBondedAt` (only to count the commits below).
    mapping(address => uint256) internal _bondedTime;
    mapping(address => uint256) public ghostCompleted;
    mapping(address => uint256) public ghostSlashed;
    mapping(address => uint256) public ghostMissed;
    /// @dev Each consumer's refunds (bounties of its own unfilled / no-quorum jobs) and
    /// withdrawals: its credited balance can only ever come from the former.
    mapping(address => uint256) public refunds;
    mapping(address => uint256) public withdrawn;

    mapping(bytes4 => uint256) public calls;
    mapping(uint256 outcome => uint256) public outcomes; // 0 completed, 1 no quorum, 2 unfilled
    uint256 public duplicateSlots;
    uint256 public widenedCommits;
    /// @dev Commits on stake bonded in an earlier block with the post's own timestamp (blocks
    /// sharing a second): in the draw by the block rule, refused by the old timestamp rule.
    uint256 public sameSecondCommits;
    /// @dev Set while commitResult drives _tryCommit: the commit settles the job at once.
    bool internal _solo;

    constructor(JobEscrow escrow_, TestToken token_) {
        escrow = escrow_;
        token = token_;
        for (uint256 i = 0; i < 4; ++i) {
            providers.push(address(uint160(0x1000 + i)));
        }
        consumers.push(address(uint160(0x2000)));
        consumers.push(address(uint160(0x2001)));
    }

    function actors() external view returns (address[] memory all) {
        all = new address[](6);
        for (uint256 i = 0; i < 4; ++i) {
            all[i] = providers[i];
        }
        (all[4], all[5]) = (consumers[0], consumers[1]);
    }

    function lanes() external pure returns (uint256[] memory l) {
        l = new uint256[](LANES);
        for (uint256 i = 0; i < LANES - 1; ++i) {
            l[i] = i;
        }
        l[LANES - 1] = 2 ** 96 - 1;
    }

    function jobCount() external view returns (uint256) {
        return _jobs.length;
    }

    // ------------------------------------------------------------ actions

    function stake(uint256 who, uint256 amount) external {
        address p = providers[who % 4];
        uint256 least = ghostStaked[p] >= MIN_STAKE ? 1 : MIN_STAKE - ghostStaked[p];
        amount = _bound(amount, least, 20 ether);
        uint256 value = _fund(p, amount);
        vm.prank(p);
        escrow.stake{value: value}(amount);
        _noteBlockStart();
        ghostStaked[p] += amount;
        ghostTotalStake += amount;
        ghostBondedAt[p] = block.number; // the block in which the stake last grew
        _bondedTime[p] = block.timestamp;
        calls[this.stake.selector]++;
    }

    function unstake(uint256 who, uint256 amount) external {
        address p = providers[who % 4];
        uint256 staked = ghostStaked[p];
        uint256 locked = ghostLocked[p];
        uint256 free = staked - locked;
        if (free == 0) return;
        amount = _bound(amount, 1, free);
        uint256 rest = staked - amount;
        if (rest != 0 && rest < MIN_STAKE) {
            if (locked == 0) {
                amount = staked; // a full exit
            } else {
                uint256 keep = locked > MIN_STAKE ? locked : MIN_STAKE;
                if (staked <= keep) return;
                amount = staked - keep;
            }
        }
        vm.prank(p);
        escrow.unstake(amount);
        _noteBlockStart();
        ghostStaked[p] -= amount;
        ghostTotalStake -= amount;
        calls[this.unstake.selector]++;
    }

    function postJob(
        uint256 who,
        uint256 k,
        uint256 bounty,
        uint256 collateral,
        uint256 windows,
        uint256 blockSeed
    ) external {
        if (_liveCount() >= 4) return;
        IJobEscrow.JobSpec memory spec = _newSpec(who, k, bounty, collateral, windows, 0);
        uint256 value = _fund(spec.consumer, spec.bounty);
        vm.prank(spec.consumer);
        uint256 id = escrow.postJob{value: value}(spec);
        _recordPost(id, spec);
        _sealPost(blockSeed);
        calls[this.postJob.selector]++;
    }

    /// @dev Posts 1..(4 - live) jobs of one consumer in one postJobs call (one block, one
    /// draw), paying the sum of their bounties.
    function postJobs(
        uint256 who,
        uint256 n,
        uint256 k,
        uint256 bounty,
        uint256 collateral,
        uint256 windows,
        uint256 blockSeed
    ) external {
        uint256 live = _liveCount();
        if (live >= 4) return;
        n = _bound(n, 1, 4 - live);
        IJobEscrow.JobSpec[] memory specs = new IJobEscrow.JobSpec[](n);
        uint256 sum;
        for (uint256 i = 0; i < n; ++i) {
            specs[i] = _newSpec(who, k >> (8 * i), bounty >> (64 * i), collateral, windows, i);
            sum += specs[i].bounty;
        }
        uint256 value = _fund(specs[0].consumer, sum);
        vm.prank(specs[0].consumer);
        uint256 first = escrow.postJobs{value: value}(specs);
        for (uint256 i = 0; i < n; ++i) {
            _recordPost(first + i, specs[i]);
        }
        _sealPost(blockSeed);
        calls[this.postJobs.selector]++;
    }

    /// @dev A valid spec of consumer `who % 2`; `salt` tells apart the specs of one batch.
    function _newSpec(
        uint256 who,
        uint256 k,
        uint256 bounty,
        uint256 collateral,
        uint256 windows,
        uint256 salt
    ) internal view returns (IJobEscrow.JobSpec memory spec) {
        (uint256 minCommit, uint256 minReveal,) = escrow.windows();
        spec.consumer = consumers[who % 2];
        spec.kernelId = keccak256(abi.encode("kernel", _jobs.length, salt));
        spec.inputHash = keccak256(abi.encode("input", _jobs.length, salt));
        spec.inputSize = 1024;
        spec.maxOutputSize = 1024;
        spec.bounty = uint96(_bound(bounty, 1, 10 ether));
        spec.collateral = uint96(_bound(collateral, 0, 3 ether));
        spec.replicas = uint8(_bound(k, 1, 4));
        spec.quorum = spec.replicas / 2 + 1;
        spec.commitDeadline = uint40(block.timestamp + minCommit + (windows % 20 minutes));
        spec.revealDeadline =
            uint40(spec.commitDeadline + minReveal + (windows >> 128) % 20 minutes);
        spec.inputLocation = "peer";
    }

    /// @dev Records job `id` just posted with `spec` in this block.
    function _recordPost(uint256 id, IJobEscrow.JobSpec memory spec) internal {
        require(id == _jobs.length + 1, "ids count from 1");
        JobRec storage job = _jobs.push();
        job.id = id;
        job.live = true;
        job.postedAt = block.timestamp;
        job.draw = block.number << 32 | block.timestamp;
        job.drawTotal = _rounded(_totalAsBlockFoundIt());
        _specs.push(spec);
        ghostLiveBounties += spec.bounty;
    }

    /// @dev The post's block is sealed (its hash fixed) and the chain moves on: commits come
    /// from the next block. The model reads the post block's hash from the chain, as a node
    /// does.
    function _sealPost(uint256 blockSeed) internal {
        vm.roll(block.number + 1 + blockSeed % 2); // <= 2 * depth = 256 blocks a run
    }

    function commit(uint256 jobSeed, uint256 who, uint256 honesty, uint256 laneSeed, uint256 dup)
        external
    {
        (bool ok, uint256 j) = _pickLive(jobSeed);
        if (!ok) return;
        IJobEscrow.JobSpec memory spec = _specs[j];
        JobRec storage job = _jobs[j];
        if (block.timestamp > spec.commitDeadline || job.slots.length == spec.replicas) return;
        for (uint256 i = 0; i < 4; ++i) {
            address p = providers[(who % 4 + i) % 4];
            // A second slot of the same job is allowed (and settled Missed), but rare.
            if (_holds(job, p) && dup % 8 != 0) continue;
            if (_tryCommit(j, p, honesty, laneSeed)) return;
        }
    }

    /// @dev Takes the only slot of a one-replica job with its result in the clear
    /// (commitResult), which settles it at once by the same rules as commit + reveal.
    function commitResult(uint256 jobSeed, uint256 who, uint256 honesty, uint256 laneSeed)
        external
    {
        (bool ok, uint256 j) = _pickLive(jobSeed);
        if (!ok) return;
        IJobEscrow.JobSpec memory spec = _specs[j];
        if (spec.replicas != 1 || block.timestamp > spec.commitDeadline) return;
        if (_jobs[j].slots.length != 0) return;
        _solo = true;
        for (uint256 i = 0; i < 4; ++i) {
            if (_tryCommit(j, providers[(who % 4 + i) % 4], honesty, laneSeed)) break;
        }
        _solo = false;
    }

    /// @dev Commits for `p` if the rules let it (drawn now, stake, free stake, a free lane).
    function _tryCommit(uint256 j, address p, uint256 honesty, uint256 laneSeed)
        internal
        returns (bool)
    {
        (bool eligible, bool drawn) = _checkedDraw(j, p);
        if (!eligible || ghostStaked[p] < MIN_STAKE) return false;
        if (ghostStaked[p] - ghostLocked[p] < _specs[j].collateral) return false;
        (bool free, uint256 lane) = _freeLane(p, laneSeed);
        if (!free) return false;
        _doCommit(j, p, lane, drawn, honesty % 5 < 3 ? 0 : honesty % 5 - 2);
        return true;
    }

    /// @dev The model's draw for `p`, checked against drawOf.
    function _checkedDraw(uint256 j, address p) internal view returns (bool eligible, bool drawn) {
        JobRec storage job = _jobs[j];
        (eligible, drawn) = _drawModel(job, _specs[j], p);
        (bool e, bool d,) = escrow.drawOf(job.id, escrow.termsOf(_specs[j], job.draw), p);
        require(e == eligible && d == drawn, "drawOf matches the rule");
    }

    function _doCommit(uint256 j, address p, uint256 lane, bool drawn, uint256 answer) internal {
        JobRec storage job = _jobs[j];
        IJobEscrow.JobTerms memory terms = escrow.termsOf(_specs[j], job.draw);
        bytes32 result = keccak256(abi.encode(job.id, answer));
        bytes32 commitment = escrow.commitmentOf(job.id, p, result, _salt(job.id, p, lane));
        if (_holds(job, p)) duplicateSlots++;
        if (!drawn) widenedCommits++;
        if (_bondedTime[p] == job.postedAt) sameSecondCommits++;
        ghostLocked[p] += _specs[j].collateral;
        vm.prank(p);
        if (_solo) {
            escrow.commitResult(job.id, terms, lane, result);
            job.slots.push(Slot(p, lane, 2, drawn, result));
            (bytes24 live,,,) = escrow.jobState(job.id);
            require(live == bytes24(0), "commitResult settles");
            _settle(j, true);
            calls[this.commitResult.selector]++;
            return;
        }
        escrow.commit(job.id, terms, lane, commitment);
        job.slots.push(Slot(p, lane, 1, drawn, result));
        laneJob[p][lane] = job.id;
        calls[this.commit.selector]++;
    }

    function reveal(uint256 jobSeed, uint256 who, uint256 hintSeed) external {
        (bool ok, uint256 j) = _pickLive(jobSeed);
        if (!ok) return;
        IJobEscrow.JobSpec memory spec = _specs[j];
        JobRec storage job = _jobs[j];
        uint256 n = job.slots.length;
        if (n < spec.replicas || block.timestamp > spec.revealDeadline) return;
        uint256 s = n;
        for (uint256 i = 0; i < n; ++i) {
            if (job.slots[(who % n + i) % n].phase == 1) {
                s = (who % n + i) % n;
                break;
            }
        }
        if (s == n) return;
        Slot storage slot = job.slots[s];
        slot.phase = 2;
        bool last = _revealedCount(job) == spec.replicas;
        (bytes32 winner,) = _tally(job, spec.quorum);
        uint256[] memory others = _keysWithout(job, s);
        bytes32 hint = winner;
        // A reveal that is not the last, or whose own hash won (or nobody won), may pass
        // anything as the hint; one that is not the last may pass no list.
        if (!last || slot.result == winner || winner == bytes32(0)) {
            if (hintSeed % 3 == 1) hint = keccak256(abi.encode(hintSeed));
            if (!last && hintSeed % 4 == 1) others = new uint256[](0);
        }
        IJobEscrow.JobTerms memory terms = escrow.termsOf(spec, job.draw);
        vm.prank(slot.provider);
        escrow.reveal(
            job.id,
            terms,
            slot.lane,
            slot.result,
            _salt(job.id, slot.provider, slot.lane),
            others,
            hint
        );
        calls[this.reveal.selector]++;
        (bytes24 live,, uint8 revealed,) = escrow.jobState(job.id);
        if (!last) {
            require(live != bytes24(0) && revealed == _revealedCount(job), "reveal counter");
            return;
        }
        require(live == bytes24(0), "the last reveal settles");
        _settle(j, true);
    }

    function finalize(uint256 jobSeed) external {
        (bool ok, uint256 j) = _pickLive(jobSeed);
        if (!ok) return;
        IJobEscrow.JobSpec memory spec = _specs[j];
        JobRec storage job = _jobs[j];
        bool filled = job.slots.length == spec.replicas;
        if (!filled && block.timestamp <= spec.commitDeadline) return;
        // A live filled job has a reveal missing (the last reveal settles).
        require(!filled || _revealedCount(job) < spec.replicas, "fully revealed job still live");
        if (filled && block.timestamp <= spec.revealDeadline) return;
        (bytes32 winner,) = filled ? _tally(job, spec.quorum) : (bytes32(0), 0);
        IJobEscrow.JobTerms memory terms = escrow.termsOf(spec, job.draw);
        escrow.finalize(job.id, terms, _keysWithout(job, type(uint256).max), winner);
        _settle(j, filled);
        calls[this.finalize.selector]++;
    }

    function withdraw(uint256 who, uint256 amount, bool all) external {
        address a = who % 2 == 0 ? providers[(who / 2) % 4] : consumers[(who / 2) % 2];
        uint256 owed = ghostOwed[a];
        if (owed == 0) return;
        amount = all ? owed : _bound(amount, 1, owed);
        vm.prank(a);
        if (all) escrow.withdraw();
        else escrow.withdraw(amount);
        ghostOwed[a] -= amount;
        withdrawn[a] += amount;
        calls[this.withdraw.selector]++;
    }

    /// @dev The optional one-time set-up: pre-pays the balance slot and some lanes.
    function openAccount(uint256 who, uint256 count) external {
        vm.prank(providers[who % 4]);
        escrow.openAccount(_bound(count, 0, 8));
        calls[this.openAccount.selector]++;
    }

    function warp(uint256 dt) external {
        vm.warp(block.timestamp + _bound(dt, 1, 4 minutes));
        calls[this.warp.selector]++;
    }

    /// @dev The chain moves one block on without a post, 0 to 12 seconds later (0: blocks that
    /// share a timestamp, as on some L2s). With the posts' at most 2 blocks a call, a run stays
    /// within 2 * depth = 256 blocks, so every post block's hash stays in reach.
    function nextBlock(uint256 dt) external {
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + dt % 13);
        calls[this.nextBlock.selector]++;
    }

    // ------------------------------------------------------------ the model

    /// @dev The draw, restated: eligible now, and drawn at the base rate. Only stake bonded in
    /// a block before the post's is in it (the block whose starting total is the denominator).
    function _drawModel(JobRec storage job, IJobEscrow.JobSpec storage spec, address p)
        internal
        view
        returns (bool eligible, bool drawn)
    {
        if (ghostBondedAt[p] >= job.draw >> 32) return (false, false);
        bytes32 postHash = blockhash(job.draw >> 32);
        require(postHash != bytes32(0), "the post block's hash is in reach");
        uint256 u = uint64(uint256(keccak256(abi.encode(postHash, job.id, p))));
        uint256 steps = 0;
        if (block.timestamp > job.postedAt) {
            steps =
                (block.timestamp - job.postedAt) * DOUBLINGS / (spec.commitDeadline - job.postedAt);
            if (steps > DOUBLINGS) steps = DOUBLINGS;
        }
        uint256 lhs = u * job.drawTotal; // the total at the post, not now
        uint256 base = (uint256(spec.replicas) * ghostStaked[p]) << 64;
        return (lhs < base << steps, lhs < base);
    }

    /// @dev Applies the settlement rules to the ghost books (filled: by quorum; else
    /// unfilled: everyone released, the bounty refunded).
    function _settle(uint256 j, bool filled) internal {
        IJobEscrow.JobSpec memory spec = _specs[j];
        JobRec storage job = _jobs[j];
        job.live = false;
        ghostLiveBounties -= spec.bounty;
        (bytes32 winner, uint256 winners) = filled ? _tally(job, spec.quorum) : (bytes32(0), 0);
        uint256 penalty = uint256(spec.collateral) * escrow.slashBps() / BPS;
        uint256[] memory order = _order(job);
        bool first = true;
        for (uint256 o = 0; o < order.length; ++o) {
            Slot storage s = job.slots[order[o]];
            address p = s.provider;
            ghostLocked[p] -= spec.collateral;
            delete laneJob[p][s.lane];
            if (!filled) continue;
            bool dup = _count(job, p) > 1;
            bool revealed = s.phase == 2;
            uint256 taken = 0;
            if (winners > 0 && !dup && revealed && s.result == winner) {
                uint256 share = spec.bounty / winners;
                if (first) share += spec.bounty % winners;
                first = false;
                ghostOwed[p] += share;
                if (s.drawn) ghostCompleted[p]++;
            } else if (!dup && revealed) {
                if (winners > 0) {
                    taken = penalty;
                    ghostSlashed[p]++;
                }
            } else {
                taken = penalty;
                ghostMissed[p]++;
            }
            ghostStaked[p] -= taken;
            _noteBlockStart();
            ghostTotalStake -= taken;
            ghostBurned += taken;
        }
        if (winners == 0) {
            ghostOwed[spec.consumer] += spec.bounty;
            refunds[spec.consumer] += spec.bounty;
        }
        outcomes[!filled ? 2 : winners > 0 ? 0 : 1]++;
    }

    /// @dev The hash revealed by a quorum of the counted slots (a provider holding two slots
    /// counts for none), and how many revealed it.
    function _tally(JobRec storage job, uint256 quorum)
        internal
        view
        returns (bytes32 winner, uint256 count)
    {
        uint256 n = job.slots.length;
        for (uint256 i = 0; i < n; ++i) {
            Slot storage a = job.slots[i];
            if (a.phase != 2 || _count(job, a.provider) > 1) continue;
            uint256 c;
            for (uint256 k = 0; k < n; ++k) {
                Slot storage b = job.slots[k];
                if (b.phase == 2 && b.result == a.result && _count(job, b.provider) == 1) ++c;
            }
            if (c >= quorum) return (a.result, c);
        }
    }

    // ------------------------------------------------------------ helpers

    function _fund(address who, uint256 amount) internal returns (uint256 value) {
        if (address(token) == address(0)) {
            vm.deal(who, who.balance + amount);
            return amount;
        }
        token.mint(who, amount);
        vm.prank(who);
        token.approve(address(escrow), amount);
        return 0;
    }

    function _laneAt(uint256 i) internal pure returns (uint256) {
        return i == LANES - 1 ? 2 ** 96 - 1 : i;
    }

    function _freeLane(address p, uint256 seed) internal view returns (bool, uint256) {
        for (uint256 i = 0; i < LANES; ++i) {
            uint256 lane = _laneAt((seed % LANES + i) % LANES);
            if (laneJob[p][lane] == 0) return (true, lane);
        }
        return (false, 0);
    }

    function _holds(JobRec storage job, address p) internal view returns (bool) {
        return _count(job, p) > 0;
    }

    function _count(JobRec storage job, address p) internal view returns (uint256 n) {
        for (uint256 i = 0; i < job.slots.length; ++i) {
            if (job.slots[i].provider == p) ++n;
        }
    }

    function _revealedCount(JobRec storage job) internal view returns (uint256 n) {
        for (uint256 i = 0; i < job.slots.length; ++i) {
            if (job.slots[i].phase == 2) ++n;
        }
    }

    function _key(Slot storage s) internal view returns (uint256) {
        return uint256(uint160(s.provider)) << 96 | s.lane;
    }

    /// @dev Slot indexes in ascending key order.
    function _order(JobRec storage job) internal view returns (uint256[] memory idx) {
        uint256 n = job.slots.length;
        idx = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            idx[i] = i;
        }
        for (uint256 i = 0; i < n; ++i) {
            for (uint256 k = i + 1; k < n; ++k) {
                if (_key(job.slots[idx[k]]) < _key(job.slots[idx[i]])) {
                    (idx[i], idx[k]) = (idx[k], idx[i]);
                }
            }
        }
    }

    /// @dev Every slot's key but slot `skip`'s, ascending.
    function _keysWithout(JobRec storage job, uint256 skip)
        internal
        view
        returns (uint256[] memory keys)
    {
        uint256[] memory idx = _order(job);
        keys = new uint256[](skip < idx.length ? idx.length - 1 : idx.length);
        uint256 n = 0;
        for (uint256 i = 0; i < idx.length; ++i) {
            if (idx[i] != skip) keys[n++] = _key(job.slots[idx[i]]);
        }
    }

    /// @dev One of the (at most 4) live jobs.
    function _pickLive(uint256 seed) internal view returns (bool, uint256) {
        uint256 n = _jobs.length;
        uint256 skip = seed % 4;
        for (uint256 i = n; i > 0; --i) {
            if (!_jobs[i - 1].live) continue;
            if (skip == 0) return (true, i - 1);
            --skip;
        }
        for (uint256 i = n; i > 0; --i) {
            if (_jobs[i - 1].live) return (true, i - 1);
        }
        return (false, 0);
    }

    function _liveCount() internal view returns (uint256 live) {
        for (uint256 i = 0; i < _jobs.length; ++i) {
            if (_jobs[i].live) ++live;
        }
    }

    /// @dev Whether every job's on-chain state matches the model: live jobs' counters, none
    /// fully revealed and still live, settled jobs deleted.
    function liveJobsMatch() external view returns (bool) {
        for (uint256 i = 0; i < _jobs.length; ++i) {
            JobRec storage job = _jobs[i];
            (bytes24 h, uint8 committed, uint8 revealed, uint256 total) = escrow.jobState(job.id);
            if (!job.live) {
                if (h != bytes24(0)) return false;
                continue;
            }
            if (h == bytes24(0) || committed != job.slots.length || total != job.drawTotal) {
                return false;
            }
            if (revealed != _revealedCount(job) || revealed >= _specs[i].replicas) return false;
        }
        return true;
    }

    /// @dev Before the model's total changes: keeps the total as this block found it.
    function _noteBlockStart() internal {
        if (_totalMovedIn[block.number]) return;
        _totalMovedIn[block.number] = true;
        _totalAtBlockStart[block.number] = ghostTotalStake;
    }

    /// @dev The model's total stake before this block's transactions moved it.
    function _totalAsBlockFoundIt() internal view returns (uint256) {
        return _totalMovedIn[block.number] ? _totalAtBlockStart[block.number] : ghostTotalStake;
    }

    /// @dev `total` rounded up to 40 significant bits (exact below 2^40).
    function _rounded(uint256 total) internal pure returns (uint256) {
        uint256 unit = 1;
        while (total / unit >= 2 ** 40) {
            unit *= 2;
        }
        return (total + unit - 1) / unit * unit;
    }

    function _salt(uint256 jobId, address p, uint256 lane) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", jobId, p, lane));
    }

    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return max - min == type(uint256).max ? x : min + (x % (max - min + 1));
    }
}
