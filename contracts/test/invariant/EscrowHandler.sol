// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "../utils/Vm.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";
import {TestToken} from "../../src/test/TestToken.sol";

/// @notice Drives a market at random: stakes, unstakes, posts, claims, commits (honest or
/// not), reveals (or not; the last reveal settles the job), finalizes after deadlines
/// (slashing dissenters and no-shows), cancels, withdraws and moves time. It keeps its own model of what the protocol owes each account, computed
/// from the rules, independently of the contracts' bookkeeping.
contract EscrowHandler {
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    uint256 internal constant BPS = 10_000;

    JobEscrow public immutable escrow;
    TestToken public immutable token; // zero in ETH mode

    address[] public providers;
    address[] public consumers;

    struct JobRec {
        uint256 id;
        bool live;
        address[] claimers;
    }

    JobRec[] internal _jobs;
    IJobEscrow.JobSpec[] internal _specs;
    mapping(uint256 jobId => mapping(address => uint8)) internal _phase; // 1 claimed 2 committed 3 revealed
    mapping(uint256 jobId => mapping(address => bytes32)) internal _result;
    /// @dev The live job in each provider's lane (jobId % LANES), 0 if free.
    mapping(address => mapping(uint256 lane => uint256 jobId)) internal _laneJob;

    // The model: what the contracts must hold and owe.
    uint256 public ghostLiveBounties;
    mapping(address => uint256) public ghostOwed; // credited minus withdrawn
    mapping(address => uint256) public ghostStaked;
    mapping(address => uint256) public ghostLocked;
    mapping(address => uint256) public ghostUnbonding;
    mapping(bytes4 => uint256) public calls;
    /// @dev How many settlements ended with 0 (unfilled/no quorum), 1, or several winners.
    mapping(uint256 => uint256) public finalizedByWinners;
    /// @dev Settlements run by a last reveal, and those where that revealer dissented.
    uint256 public settledByReveal;
    uint256 public settledByDissentingReveal;

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

    function jobCount() external view returns (uint256) {
        return _jobs.length;
    }

    // ------------------------------------------------------------ actions

    function stake(uint256 who, uint256 amount) external {
        _stakeFor(providers[who % 4], _bound(amount, 1 ether, 20 ether));
    }

    function _stakeFor(address p, uint256 amount) internal {
        uint256 value = _fund(p, amount, address(escrow));
        vm.prank(p);
        escrow.stake{value: value}(amount);
        ghostStaked[p] += amount;
        calls[this.stake.selector]++;
    }

    function requestUnstake(uint256 who, uint256 amount) external {
        address p = providers[who % 4];
        uint256 free = ghostStaked[p] - ghostLocked[p];
        if (free == 0) return;
        amount = _bound(amount, 1, free);
        vm.prank(p);
        escrow.requestUnstake(amount);
        ghostStaked[p] -= amount;
        ghostUnbonding[p] += amount;
        calls[this.requestUnstake.selector]++;
    }

    function withdrawStake(uint256 who) external {
        address p = providers[who % 4];
        (,,, uint256 releaseAt) = escrow.stakeOf(p);
        if (ghostUnbonding[p] == 0 || block.timestamp < releaseAt) return;
        vm.prank(p);
        escrow.withdrawStake();
        ghostUnbonding[p] = 0;
        calls[this.withdrawStake.selector]++;
    }

    function postJob(uint256 who, uint256 k, uint256 bounty, uint256 collateral, uint256 quorum)
        external
    {
        if (_liveCount() >= 3) return;
        address c = consumers[who % 2];
        IJobEscrow.JobSpec memory spec;
        spec.consumer = c;
        spec.kernelId = keccak256(abi.encode("kernel", _jobs.length));
        spec.inputHash = keccak256(abi.encode("input", _jobs.length));
        spec.inputSize = 1024;
        spec.maxOutputSize = 1024;
        spec.bounty = uint96(_bound(bounty, 1, 10 ether));
        spec.collateral = uint96(_bound(collateral, 0, 3 ether));
        spec.replicas = uint8(_bound(k, 1, 3));
        spec.quorum = uint8(_bound(quorum, spec.replicas / 2 + 1, spec.replicas));
        spec.claimDeadline = uint40(block.timestamp + 10 minutes);
        spec.commitDeadline = uint40(block.timestamp + 20 minutes);
        spec.revealDeadline = uint40(block.timestamp + 30 minutes);
        spec.inputLocation = "peer";
        uint256 value = _fund(c, spec.bounty, address(escrow));
        vm.prank(c);
        uint256 id = escrow.postJob{value: value}(spec);
        _jobs.push();
        _jobs[_jobs.length - 1].id = id;
        _jobs[_jobs.length - 1].live = true;
        _specs.push(spec);
        ghostLiveBounties += spec.bounty;
        calls[this.postJob.selector]++;
    }

    function claim(uint256 jobSeed, uint256 who) external {
        (bool ok, uint256 j) = _pickLive(jobSeed);
        if (!ok) return;
        IJobEscrow.JobSpec memory spec = _specs[j];
        JobRec storage job = _jobs[j];
        if (block.timestamp > spec.claimDeadline || job.claimers.length == spec.replicas) return;
        address p = providers[who % 4];
        for (uint256 i = 0; i < 4 && _phase[job.id][p] != 0; ++i) {
            p = providers[(who % 4 + i) % 4];
        }
        if (_phase[job.id][p] != 0) return;
        uint256 lane = job.id % escrow.LANES();
        if (_laneJob[p][lane] != 0) return; // busy with another live job: the claim must revert
        if (ghostStaked[p] < 1 ether || ghostStaked[p] - ghostLocked[p] < spec.collateral) {
            _stakeFor(p, spec.collateral + 1 ether);
        }
        IJobEscrow.JobTerms memory terms = escrow.termsOf(spec);
        vm.prank(p);
        escrow.claim(job.id, terms);
        _laneJob[p][lane] = job.id;
        job.claimers.push(p);
        _phase[job.id][p] = 1;
        ghostLocked[p] += spec.collateral;
        calls[this.claim.selector]++;
    }

    function commit(uint256 jobSeed, uint256 who, uint256 honesty) external {
        (bool ok, uint256 j) = _pickLive(jobSeed);
        if (!ok) return;
        IJobEscrow.JobSpec memory spec = _specs[j];
        JobRec storage job = _jobs[j];
        if (job.claimers.length == 0) return;
        address p = _claimerIn(job, who, 1);
        if (p == address(0) || block.timestamp > spec.commitDeadline) return;
        if (job.claimers.length < spec.replicas && block.timestamp > spec.claimDeadline) return;
        // Mostly honest: 0 = honest, 1 and 2 = two different wrong answers.
        uint256 answer = honesty % 5 < 3 ? 0 : honesty % 5 - 2;
        bytes32 resultHash = keccak256(abi.encode(job.id, answer));
        _result[job.id][p] = resultHash;
        bytes32 commitment = escrow.commitmentOf(job.id, p, resultHash, _salt(job.id, p));
        IJobEscrow.JobTerms memory terms = escrow.termsOf(spec);
        vm.prank(p);
        escrow.commit(job.id, terms, commitment);
        _phase[job.id][p] = 2;
        calls[this.commit.selector]++;
    }

    function reveal(uint256 jobSeed, uint256 who, uint256 hintSeed) external {
        (bool ok, uint256 j) = _pickLive(jobSeed);
        if (!ok) return;
        IJobEscrow.JobSpec memory spec = _specs[j];
        JobRec storage job = _jobs[j];
        if (job.claimers.length == 0) return;
        address p = _claimerIn(job, who, 2);
        if (p == address(0) || block.timestamp > spec.revealDeadline) return;
        if (!_allCommitted(job) && block.timestamp <= spec.commitDeadline) return;
        if (job.claimers.length < spec.replicas && block.timestamp > spec.claimDeadline) return;
        _phase[job.id][p] = 3;
        bool last = _revealed(job) == spec.replicas;
        address[] memory list = _sorted(job.claimers);
        (bytes32 winner, uint256 winners) = _tally(job.id, list, spec.quorum);
        // What a node passes: the other claimers and the quorum's hash (the model's). A
        // reveal that is not the last, or whose own hash won, may pass anything.
        address[] memory others = _without(list, p);
        bytes32 hint = winner;
        if (!last || _result[job.id][p] == winner) {
            if (hintSeed % 3 == 1) hint = keccak256(abi.encode(hintSeed));
            if (!last && hintSeed % 4 == 1) others = new address[](0);
        }
        IJobEscrow.JobTerms memory terms = escrow.termsOf(spec);
        vm.prank(p);
        escrow.reveal(job.id, terms, _result[job.id][p], _salt(job.id, p), others, hint);
        calls[this.reveal.selector]++;
        (bytes24 live,,, uint8 revealed) = escrow.jobState(job.id);
        if (!last) {
            require(live != bytes24(0) && revealed == _revealed(job), "reveal counter");
            return;
        }
        require(live == bytes24(0), "the last reveal settles");
        _settled(j, list, winner, winners);
        settledByReveal++;
        if (_result[job.id][p] != winner) settledByDissentingReveal++;
    }

    function cancel(uint256 jobSeed) external {
        (bool ok, uint256 j) = _pickLive(jobSeed);
        if (!ok || _jobs[j].claimers.length != 0) return;
        IJobEscrow.JobSpec memory spec = _specs[j];
        IJobEscrow.JobTerms memory terms = escrow.termsOf(spec);
        vm.prank(spec.consumer);
        escrow.cancel(_jobs[j].id, terms);
        _jobs[j].live = false;
        ghostLiveBounties -= spec.bounty;
        ghostOwed[spec.consumer] += spec.bounty;
        calls[this.cancel.selector]++;
    }

    function finalize(uint256 jobSeed) external {
        (bool ok, uint256 j) = _pickLive(jobSeed);
        if (!ok) return;
        IJobEscrow.JobSpec memory spec = _specs[j];
        JobRec storage job = _jobs[j];
        bool filled = job.claimers.length == spec.replicas;
        if (!filled && block.timestamp <= spec.claimDeadline) return;
        // A live filled job has a replica missing (the last reveal settles): it waits for
        // the reveal deadline.
        require(!filled || _revealed(job) < spec.replicas, "fully revealed job still live");
        if (filled && block.timestamp <= spec.revealDeadline) return;
        address[] memory list = _sorted(job.claimers);
        (bytes32 winner, uint256 winners) =
            filled ? _tally(job.id, list, spec.quorum) : (bytes32(0), 0);
        escrow.finalize(job.id, escrow.termsOf(spec), list, winner);
        _settled(j, list, winner, winners);
        calls[this.finalize.selector]++;
    }

    /// @dev Books a settlement (by finalize or by the last reveal) in the model.
    function _settled(uint256 j, address[] memory list, bytes32 winner, uint256 winners) internal {
        IJobEscrow.JobSpec memory spec = _specs[j];
        JobRec storage job = _jobs[j];
        bool filled = job.claimers.length == spec.replicas;
        for (uint256 i = 0; i < list.length; ++i) {
            delete _laneJob[list[i]][job.id % escrow.LANES()];
        }
        job.live = false;
        ghostLiveBounties -= spec.bounty;
        _settleModel(job.id, spec, list, filled, winner, winners);
        finalizedByWinners[winners > 1 ? 2 : winners]++;
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
        calls[this.withdraw.selector]++;
    }

    /// @dev The optional one-time set-up: pre-pays the balance slot and some lanes.
    function openAccount(uint256 who, uint256 lanes) external {
        lanes = _bound(lanes, 0, escrow.LANES());
        vm.prank(providers[who % 4]);
        escrow.openAccount(lanes);
        calls[this.openAccount.selector]++;
    }

    function warp(uint256 dt) external {
        vm.warp(block.timestamp + _bound(dt, 1, 4 minutes));
        calls[this.warp.selector]++;
    }

    // ------------------------------------------------------------ the model

    /// @dev Applies the settlement rules to the ghost books.
    function _settleModel(
        uint256 jobId,
        IJobEscrow.JobSpec memory spec,
        address[] memory list,
        bool filled,
        bytes32 winner,
        uint256 winners
    ) internal {
        uint256 penalty = uint256(spec.collateral) * escrow.slashBps() / BPS;
        uint256 toConsumer = winners == 0 ? spec.bounty : 0;
        bool first = true;
        for (uint256 i = 0; i < list.length; ++i) {
            address p = list[i];
            ghostLocked[p] -= spec.collateral;
            if (!filled) continue;
            bool revealed = _phase[jobId][p] == 3;
            if (winners > 0 && revealed && _result[jobId][p] == winner) {
                uint256 share = spec.bounty / winners;
                if (first) share += spec.bounty % winners;
                first = false;
                ghostOwed[p] += share;
            } else if (!revealed || winners > 0) {
                ghostStaked[p] -= penalty;
                toConsumer += penalty;
            }
        }
        ghostOwed[spec.consumer] += toConsumer;
    }

    function _tally(uint256 jobId, address[] memory list, uint256 quorum)
        internal
        view
        returns (bytes32 winner, uint256 count)
    {
        for (uint256 i = 0; i < list.length; ++i) {
            if (_phase[jobId][list[i]] != 3) continue;
            uint256 n;
            for (uint256 j = 0; j < list.length; ++j) {
                if (
                    _phase[jobId][list[j]] == 3
                        && _result[jobId][list[j]] == _result[jobId][list[i]]
                ) {
                    ++n;
                }
            }
            if (n >= quorum) return (_result[jobId][list[i]], n);
        }
    }

    // ------------------------------------------------------------ helpers

    function _fund(address who, uint256 amount, address spender) internal returns (uint256 value) {
        if (address(token) == address(0)) {
            vm.deal(who, who.balance + amount);
            return amount;
        }
        token.mint(who, amount);
        vm.prank(who);
        token.approve(spender, amount);
        return 0;
    }

    /// @dev One of the (at most 3) live jobs, so that random calls keep hitting the same
    /// few jobs and drive them through to settlement.
    function _pickLive(uint256 seed) internal view returns (bool, uint256) {
        uint256 n = _jobs.length;
        uint256 skip = seed % 3;
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

    /// @dev A claimer of `job` in `phase`, starting the search at `seed`; zero if none.
    function _claimerIn(JobRec storage job, uint256 seed, uint8 phase)
        internal
        view
        returns (address)
    {
        uint256 n = job.claimers.length;
        for (uint256 i = 0; i < n; ++i) {
            address p = job.claimers[(seed % n + i) % n];
            if (_phase[job.id][p] == phase) return p;
        }
        return address(0);
    }

    function _liveCount() internal view returns (uint256 live) {
        for (uint256 i = 0; i < _jobs.length; ++i) {
            if (_jobs[i].live) ++live;
        }
    }

    function _allCommitted(JobRec storage job) internal view returns (bool) {
        if (job.claimers.length < _specs[_indexOf(job.id)].replicas) return false;
        for (uint256 i = 0; i < job.claimers.length; ++i) {
            if (_phase[job.id][job.claimers[i]] < 2) return false;
        }
        return true;
    }

    function _revealed(JobRec storage job) internal view returns (uint256 n) {
        for (uint256 i = 0; i < job.claimers.length; ++i) {
            if (_phase[job.id][job.claimers[i]] == 3) ++n;
        }
    }

    function _indexOf(uint256 jobId) internal pure returns (uint256) {
        return jobId - 1; // ids are 1, 2, 3, ... in posting order
    }

    function _sorted(address[] memory a) internal pure returns (address[] memory l) {
        l = a;
        for (uint256 i = 0; i < l.length; ++i) {
            for (uint256 j = i + 1; j < l.length; ++j) {
                if (l[j] < l[i]) (l[i], l[j]) = (l[j], l[i]);
            }
        }
    }

    function _without(address[] memory list, address p)
        internal
        pure
        returns (address[] memory out)
    {
        out = new address[](list.length - 1);
        uint256 n = 0;
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] != p) out[n++] = list[i];
        }
    }

    /// @dev Whether every live job's on-chain counters match the model, and none is fully
    /// revealed (the last reveal must have settled it).
    function liveJobsMatch() external view returns (bool) {
        for (uint256 i = 0; i < _jobs.length; ++i) {
            JobRec storage job = _jobs[i];
            (bytes24 h, uint8 claimed,, uint8 revealed) = escrow.jobState(job.id);
            if (!job.live) {
                if (h != bytes24(0)) return false;
                continue;
            }
            if (h == bytes24(0) || claimed != job.claimers.length) return false;
            if (revealed != _revealed(job) || revealed >= _specs[i].replicas) return false;
        }
        return true;
    }

    function _salt(uint256 jobId, address p) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", jobId, p));
    }

    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return max - min == type(uint256).max ? x : min + (x % (max - min + 1));
    }
}
