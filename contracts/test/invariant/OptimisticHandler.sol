// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "../utils/Vm.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";
import {TestToken} from "../../src/test/TestToken.sol";

/// @notice Drives a market through the whole optimistic life at random, with only the calls
/// the rules allow: optimistic posts (two consumers), claims by one of five staked providers
/// (honest or lying; time moves to its eligibility), challenges, judging of the escalation
/// (each drawn judge commits the honest hash, a lie, or nothing; reveals or not), finalizing
/// parents after the window and escalations after their deadlines (filled or not), time,
/// blocks, stake top-ups and withdrawals. Its model (ghost books) is computed from the rules
/// in IJobEscrow's notes, not read from the contract; what a settlement did to the defendant
/// is observed on the contract (balance, stake and burned deltas of the settling call) and
/// kept per job for the invariants to judge against the model's verdict.
/// The clock is read with vm.getBlockTimestamp(): under via-IR, block.timestamp is a constant
/// of the transaction, and actions warp before they call.
contract OptimisticHandler {
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MIN_STAKE = 1 ether;
    uint256 internal constant STAKE = 30 ether;
    uint256 internal constant PROVIDERS = 5;
    uint256 internal constant LANES = 4;
    uint256 internal constant MAX_LIVE = 4;
    uint256 internal constant M = 3; // escalationReplicas
    uint256 internal constant QUORUM = M / 2 + 1;
    /// @dev JobPosted's draw word: kind bits above postBlock << 32 | postedAt.
    uint256 internal constant OPTIMISTIC_KIND = 2 ** 64;
    uint256 internal constant ESCALATION_KIND = 2 ** 65;

    JobEscrow public immutable escrow;
    TestToken public immutable token; // zero in ETH mode
    uint256 public immutable slashBps;
    uint256 public immutable challengeWindow;

    address[] public providers;
    address[] public consumers;

    enum Status {
        Open, // posted, slot free
        Claimed, // the defendant's hash is in
        Challenged, // its escalation is live
        Settled
    }

    /// @dev How a parent was settled (who made the settling call).
    enum SettledBy {
        None,
        Unfilled, // finalize after commitDeadline, nobody claimed
        Window, // finalize after revealDeadline + challengeWindow, unchallenged
        Escalation // the escalation's last reveal or finalize
    }

    struct Parent {
        uint256 id;
        uint256 draw;
        uint256 postedAt;
        address defendant;
        uint256 lane;
        bool drawn;
        bytes32 result;
        bool honest;
        bool willChallenge;
        Status status;
        uint256 esc; // index + 1 into _escs, 0: never challenged
        SettledBy settledBy;
        // What the settling call did, observed on the contract.
        uint256 paidObserved; // the defendant's balance delta
        uint256 slashObserved; // the defendant's stake drop
        uint256 burnedObserved; // the burned delta, less the judges' slashes the model expects
        uint256 consumerCredit; // the model's credits to the consumer for this job
    }

    struct Judge {
        address provider;
        uint256 lane;
        bytes32 result;
        bool drawn;
        bool willReveal;
        bool revealed;
    }

    struct Esc {
        uint256 id;
        uint256 parent; // index into _parents
        uint256 draw;
        bool live;
        uint256 honestCommits;
        mapping(address => bool) skips; // drawn judges that never commit
        Judge[] judges;
    }

    Parent[] internal _parents;
    IJobEscrow.JobSpec[] internal _pSpecs;
    Esc[] internal _escs;
    IJobEscrow.JobSpec[] internal _eSpecs;
    mapping(address => mapping(uint256 lane => uint256 jobId)) public laneJob;

    // The model.
    uint256 public ghostNextId = 1;
    uint256 public ghostEscrowed; // live bounties and bonds
    uint256 public ghostBurned;
    mapping(address => uint256) public ghostOwed; // credited minus withdrawn
    mapping(address => uint256) public ghostStaked;
    mapping(address => uint256) public ghostLocked;
    mapping(address => uint256) public ghostBondedAt;
    mapping(address => uint256) public ghostCompleted;
    mapping(address => uint256) public ghostSlashed;
    mapping(address => uint256) public ghostMissed;
    /// @dev Bounties and bonds each consumer paid in for its own jobs, what it withdrew.
    mapping(address => uint256) public paidIn;
    mapping(address => uint256) public withdrawn;

    mapping(bytes4 => uint256) public calls;
    /// @dev 0 unfilled, 1 unchallenged paid, 2 challenged upheld, 3 overturned.
    mapping(uint256 => uint256) public outcomes;
    uint256 public underChallengeRefusals;
    uint256 public skippedJudges;
    uint256 public unrevealedJudges;
    uint256 public unfilledEscalations;
    uint256 public lyingMajorities;

    constructor(JobEscrow escrow_, TestToken token_) {
        escrow = escrow_;
        token = token_;
        slashBps = escrow_.slashBps();
        (challengeWindow,) = escrow_.optimisticParams();
        for (uint256 i = 0; i < PROVIDERS; ++i) {
            providers.push(address(uint160(0x1000 + i)));
        }
        consumers.push(address(uint160(0x2000)));
        consumers.push(address(uint160(0x2001)));
        // Every provider stakes; the next block starts the draw.
        for (uint256 i = 0; i < PROVIDERS; ++i) {
            _stake(providers[i], STAKE);
        }
        vm.roll(vm.getBlockNumber() + 1);
        vm.warp(_now() + 1);
    }

    // ------------------------------------------------------------ views for the suite

    function actors() external view returns (address[] memory all) {
        all = new address[](PROVIDERS + 2);
        for (uint256 i = 0; i < PROVIDERS; ++i) {
            all[i] = providers[i];
        }
        (all[PROVIDERS], all[PROVIDERS + 1]) = (consumers[0], consumers[1]);
    }

    function laneCount() external pure returns (uint256) {
        return LANES;
    }

    function parentCount() external view returns (uint256) {
        return _parents.length;
    }

    function parentOf(uint256 i) external view returns (Parent memory) {
        return _parents[i];
    }

    function parentConsumer(uint256 i) external view returns (address) {
        return _pSpecs[i].consumer;
    }

    function parentBounty(uint256 i) external view returns (uint256) {
        return _pSpecs[i].bounty;
    }

    function penaltyOf(uint256 i) public view returns (uint256) {
        return uint256(_pSpecs[i].collateral) * slashBps / BPS;
    }

    /// @dev The escalation of parent `i`: whether it is live, how many judges committed the
    /// honest hash, and how many revealed it.
    function escalationOf(uint256 i)
        external
        view
        returns (uint256 id, bool live, uint256 honestCommits, uint256 honestReveals)
    {
        Parent storage p = _parents[i];
        if (p.esc == 0) return (0, false, 0, 0);
        Esc storage e = _escs[p.esc - 1];
        bytes32 honest = _honest(p.id);
        for (uint256 k = 0; k < e.judges.length; ++k) {
            if (e.judges[k].revealed && e.judges[k].result == honest) ++honestReveals;
        }
        return (e.id, e.live, e.honestCommits, honestReveals);
    }

    // ------------------------------------------------------------ actions

    function postOptimistic(uint256 who, uint256 bounty, uint256 extra, uint256 windows) external {
        if (_liveParents() >= MAX_LIVE) return;
        (uint256 minCommit, uint256 minReveal,) = escrow.windows();
        uint256 now_ = _now();
        IJobEscrow.JobSpec memory spec;
        spec.consumer = consumers[who % 2];
        spec.kernelId = keccak256(abi.encode("kernel", _parents.length));
        spec.inputHash = keccak256(abi.encode("input", _parents.length));
        spec.inputSize = 1024;
        spec.maxOutputSize = 1024;
        spec.bounty = uint96(_bound(bounty, 1, 1 ether));
        // The least collateral whose slash covers the bond, and up to 1 ether more.
        uint256 least = (M * spec.bounty * BPS + slashBps - 1) / slashBps;
        spec.collateral = uint96(least + _bound(extra, 0, 1 ether));
        spec.replicas = 1;
        spec.quorum = 1;
        spec.commitDeadline = uint40(now_ + minCommit + windows % 20 minutes);
        spec.revealDeadline =
            uint40(spec.commitDeadline + minReveal + (windows >> 128) % 20 minutes);
        spec.inputLocation = "peer";
        uint256 value = _fund(spec.consumer, spec.bounty);
        vm.prank(spec.consumer);
        uint256 id = escrow.postOptimisticJob{value: value}(spec);
        require(id == ghostNextId++, "ids count from 1");
        Parent storage p = _parents.push();
        p.id = id;
        p.draw = OPTIMISTIC_KIND | vm.getBlockNumber() << 32 | now_;
        p.postedAt = now_;
        _pSpecs.push(spec);
        ghostEscrowed += spec.bounty;
        paidIn[spec.consumer] += spec.bounty;
        _sealBlock();
        calls[this.postOptimistic.selector]++;
    }

    /// @dev One provider (from `who` on) takes the slot, moving time to its eligibility.
    function claim(uint256 jobSeed, uint256 who, uint256 honesty, uint256 laneSeed) external {
        (bool ok, uint256 i) = _pick(jobSeed, Status.Open);
        if (!ok) return;
        IJobEscrow.JobSpec memory spec = _pSpecs[i];
        if (_now() > spec.commitDeadline) return;
        Parent storage p = _parents[i];
        IJobEscrow.JobTerms memory terms = escrow.termsOf(spec, p.draw);
        for (uint256 k = 0; k < PROVIDERS; ++k) {
            address a = providers[(who % PROVIDERS + k) % PROVIDERS];
            (bool free, uint256 lane) = _canTake(a, spec.collateral, laneSeed);
            if (!free || !_reachDraw(p.id, terms, a, p.draw, spec.commitDeadline)) continue;
            (, bool drawn,) = escrow.drawOf(p.id, terms, a);
            bool honest = honesty % 3 != 0;
            bytes32 result = honest ? _honest(p.id) : _lie(p.id, honesty);
            vm.prank(a);
            escrow.commit(p.id, terms, lane, result);
            // One field a statement: the unoptimized build of `forge coverage` runs out of stack
            // on a tuple assignment of five.
            p.defendant = a;
            p.lane = lane;
            p.drawn = drawn;
            p.result = result;
            p.honest = honest;
            p.willChallenge = (honesty >> 8) % 2 == 0;
            p.status = Status.Claimed;
            laneJob[a][lane] = p.id;
            ghostLocked[a] += spec.collateral;
            calls[this.claim.selector]++;
            return;
        }
    }

    /// @dev The consumer challenges a claimed job within its window, if it is one of the
    /// (half of the) jobs its consumer means to challenge.
    function challenge(uint256 jobSeed) external {
        uint256 now_ = _now();
        uint256 n = _parents.length;
        uint256 i = n;
        for (uint256 k = 0; k < n && i == n; ++k) {
            uint256 c = (jobSeed % n + k) % n;
            Parent storage q = _parents[c];
            if (q.status != Status.Claimed || !q.willChallenge) continue;
            if (now_ <= uint256(_pSpecs[c].revealDeadline) + challengeWindow) i = c;
        }
        if (i == n) return;
        IJobEscrow.JobSpec memory spec = _pSpecs[i];
        Parent storage p = _parents[i];
        uint256 bond = M * spec.bounty;
        uint256 value = _fund(spec.consumer, bond);
        vm.prank(spec.consumer);
        uint256 escId = escrow.challenge{value: value}(
            p.id, spec, p.draw, uint256(uint160(p.defendant)) << 96 | p.lane
        );
        require(escId == ghostNextId++, "the escalation takes the next id");
        // The escalation as JobPosted carries it, restated from the notes.
        // (`e` aliases `spec`: the window lengths are read first.)
        uint256 commitWindow = spec.commitDeadline - p.postedAt;
        uint256 revealWindow = spec.revealDeadline - spec.commitDeadline;
        IJobEscrow.JobSpec memory e = spec;
        e.commitDeadline = uint40(now_ + commitWindow);
        e.revealDeadline = uint40(now_ + commitWindow + revealWindow);
        (e.replicas, e.quorum, e.bounty) = (uint8(M), uint8(QUORUM), uint96(bond));
        Esc storage esc = _escs.push();
        (esc.id, esc.parent, esc.live) = (escId, i, true);
        esc.draw = ESCALATION_KIND | vm.getBlockNumber() << 32 | now_;
        _eSpecs.push(e);
        p.status = Status.Challenged;
        p.esc = _escs.length;
        ghostEscrowed += bond;
        paidIn[spec.consumer] += bond;
        _sealBlock();
        calls[this.challenge.selector]++;
    }

    /// @dev Drawn judges (never the defendant) take the escalation's slots one after another
    /// (all that are free, or one when the top byte of `plans` is a multiple of 4): each
    /// commits the honest hash, one of two lies, or never commits at all (drawn, but it
    /// cannot fetch the input, or will not), and decides now whether it will reveal. One
    /// byte of `plans` per provider tried: bits 0-2 the choice (0-3 honest, 4-6 a lie, 7
    /// never), bit 3 the lie's variant, bits 4-5 reveal unless both are zero.
    function judge(uint256 escSeed, uint256 who, uint256 plans, uint256 laneSeed) external {
        (bool ok, uint256 x) = _pickEsc(escSeed, true);
        if (!ok) return;
        Esc storage e = _escs[x];
        IJobEscrow.JobSpec memory spec = _eSpecs[x];
        uint256 quota = (plans >> 248) % 4 == 0 ? 1 : M;
        uint256 taken = 0;
        for (uint256 t = 0; t < PROVIDERS && taken < quota; ++t) {
            if (e.judges.length == M || _now() > spec.commitDeadline) return;
            address a = providers[(who % PROVIDERS + t) % PROVIDERS];
            if (a == _parents[e.parent].defendant || _judges(e, a) || e.skips[a]) continue;
            (bool free, uint256 lane) = _canTake(a, spec.collateral, laneSeed);
            if (!free) continue;
            if (!_reachDraw(e.id, escrow.termsOf(spec, e.draw), a, e.draw, spec.commitDeadline)) {
                continue;
            }
            uint256 plan = (plans >> (8 * t)) % 256;
            if (plan % 8 == 7) {
                e.skips[a] = true;
                skippedJudges++;
                continue;
            }
            _commitJudge(x, a, lane, plan);
            ++taken;
        }
    }

    /// @dev One to three judges that mean to reveal do, in a random order (the last reveal
    /// settles the escalation, and so its parent).
    function revealJudge(uint256 escSeed, uint256 who, uint256 hintSeed) external {
        (bool ok, uint256 x) = _pickEsc(escSeed, false);
        if (!ok) return;
        uint256 n = 1 + hintSeed % M;
        for (uint256 t = 0; t < n && _escs[x].live; ++t) {
            _revealOnce(x, who % M + t, hintSeed >> (8 * t));
        }
    }

    function _revealOnce(uint256 x, uint256 who, uint256 hintSeed) internal {
        Esc storage e = _escs[x];
        IJobEscrow.JobSpec memory spec = _eSpecs[x];
        if (e.judges.length < M || _now() > spec.revealDeadline) return;
        uint256 s = M;
        for (uint256 k = 0; k < M; ++k) {
            Judge storage j = e.judges[(who % M + k) % M];
            if (j.willReveal && !j.revealed) {
                s = (who % M + k) % M;
                break;
            }
        }
        if (s == M) return;
        Judge storage jd = e.judges[s];
        jd.revealed = true;
        bool last = _revealedCount(e) == M;
        (bytes32 winner,) = _tally(e);
        bytes32 hint = winner;
        if (jd.result == winner || winner == bytes32(0)) {
            if (hintSeed % 3 == 1) hint = keccak256(abi.encode(hintSeed)); // ignored
        }
        uint256[] memory others = _keysWithout(e, s);
        IJobEscrow.JobTerms memory terms = escrow.termsOf(spec, e.draw);
        Observed memory before = _observe(_parents[e.parent]);
        vm.prank(jd.provider);
        escrow.reveal(e.id, terms, jd.lane, jd.result, _salt(e.id, jd.provider), others, hint);
        calls[this.revealJudge.selector]++;
        if (last) _settleEscalation(x, true, before);
    }

    /// @dev Settles the first parent (from `jobSeed` on) whose deadlines passed: unfilled
    /// after its commit deadline, or unchallenged after its challenge window. The first
    /// challenged one met on the way is tried too, and must be refused (EscrowUnderChallenge).
    function finalizeParent(uint256 jobSeed) external {
        uint256 n = _parents.length;
        bool tried = false;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = (jobSeed % n + k) % n;
            Parent storage p = _parents[i];
            if (p.status == Status.Settled) continue;
            IJobEscrow.JobSpec memory spec = _pSpecs[i];
            if (p.status == Status.Challenged) {
                if (!tried) _expectUnderChallenge(p, escrow.termsOf(spec, p.draw));
                tried = true;
            } else if (p.status == Status.Open && _now() > spec.commitDeadline) {
                escrow.finalize(p.id, escrow.termsOf(spec, p.draw), new uint256[](0), 0);
                _settleUnfilledParent(i);
                calls[this.finalizeParent.selector]++;
                return;
            } else if (
                p.status == Status.Claimed
                    && _now() > uint256(spec.revealDeadline) + challengeWindow
            ) {
                _finalizeClaimed(i);
                return;
            }
        }
    }

    function _finalizeClaimed(uint256 i) internal {
        Parent storage p = _parents[i];
        Observed memory before = _observe(p);
        uint256[] memory slot = new uint256[](1);
        slot[0] = uint256(uint160(p.defendant)) << 96 | p.lane;
        escrow.finalize(p.id, escrow.termsOf(_pSpecs[i], p.draw), slot, p.result);
        _recordObserved(p, before, 0);
        _payDefendant(i, SettledBy.Window);
        outcomes[1]++;
        calls[this.finalizeParent.selector]++;
    }

    /// @dev Settles the first escalation (from `escSeed` on) past its deadline: unfilled
    /// after commitDeadline, or filled with a reveal missing after revealDeadline.
    function finalizeEscalation(uint256 escSeed) external {
        uint256 n = _escs.length;
        for (uint256 k = 0; k < n; ++k) {
            uint256 x = (escSeed % n + k) % n;
            Esc storage e = _escs[x];
            if (!e.live) continue;
            bool filled = e.judges.length == M;
            IJobEscrow.JobSpec memory spec = _eSpecs[x];
            if (_now() <= (filled ? spec.revealDeadline : spec.commitDeadline)) continue;
            require(!filled || _revealedCount(e) < M, "fully revealed escalation still live");
            (bytes32 winner,) = filled ? _tally(e) : (bytes32(0), 0);
            IJobEscrow.JobTerms memory terms = escrow.termsOf(spec, e.draw);
            Observed memory before = _observe(_parents[e.parent]);
            escrow.finalize(e.id, terms, _keysWithout(e, type(uint256).max), winner);
            _settleEscalation(x, filled, before);
            calls[this.finalizeEscalation.selector]++;
            return;
        }
    }

    function withdraw(uint256 who, uint256 amount, bool all) external {
        address a = who % 2 == 0 ? providers[(who / 2) % PROVIDERS] : consumers[(who / 2) % 2];
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

    /// @dev Tops up a provider whose stake fell (slashes) below what a job needs.
    function topUp(uint256 who, uint256 amount) external {
        address a = providers[who % PROVIDERS];
        uint256 staked = ghostStaked[a];
        if (staked >= STAKE) return;
        _stake(a, _bound(amount, staked >= MIN_STAKE ? 1 : MIN_STAKE - staked, STAKE - staked));
        calls[this.topUp.selector]++;
    }

    function warp(uint256 dt) external {
        vm.warp(_now() + _bound(dt, 1, 20 minutes));
        calls[this.warp.selector]++;
    }

    /// @dev One block on, 0 to 12 seconds later. Each action moves at most one block, so a
    /// run (depth <= 128, plus set-up) keeps every draw's block hash within reach.
    function nextBlock(uint256 dt) external {
        vm.roll(vm.getBlockNumber() + 1);
        vm.warp(_now() + dt % 13);
        calls[this.nextBlock.selector]++;
    }

    // ------------------------------------------------------------ settlement, the model

    struct Observed {
        uint256 balance; // the defendant's credited balance
        uint256 staked; // the defendant's stake
        uint256 burned;
    }

    function _observe(Parent storage p) internal view returns (Observed memory o) {
        o.balance = escrow.balanceOf(p.defendant);
        (o.staked,,) = escrow.stakeOf(p.defendant);
        o.burned = escrow.burned();
    }

    /// @dev Keeps what the settling call did to the defendant and to the burned total, less
    /// `judgeSlashes` (the model's burn of dissenting judges in the same call).
    function _recordObserved(Parent storage p, Observed memory before, uint256 judgeSlashes)
        internal
    {
        Observed memory afterwards = _observe(p);
        require(afterwards.balance >= before.balance, "a settlement never debits");
        p.paidObserved = afterwards.balance - before.balance;
        p.slashObserved = before.staked - afterwards.staked;
        p.burnedObserved = afterwards.burned - before.burned - judgeSlashes;
        (bytes24 live,,,) = escrow.jobState(p.id);
        require(live == bytes24(0), "the settling call settled the parent");
    }

    function _settleUnfilledParent(uint256 i) internal {
        Parent storage p = _parents[i];
        IJobEscrow.JobSpec memory spec = _pSpecs[i];
        p.status = Status.Settled;
        p.settledBy = SettledBy.Unfilled;
        ghostEscrowed -= spec.bounty;
        _credit(i, spec.consumer, spec.bounty);
        outcomes[0]++;
    }

    /// @dev The defendant is paid the bounty as if unchallenged; its collateral unlocks.
    function _payDefendant(uint256 i, SettledBy by) internal {
        Parent storage p = _parents[i];
        IJobEscrow.JobSpec memory spec = _pSpecs[i];
        p.status = Status.Settled;
        p.settledBy = by;
        ghostEscrowed -= spec.bounty;
        ghostLocked[p.defendant] -= spec.collateral;
        delete laneJob[p.defendant][p.lane];
        ghostOwed[p.defendant] += spec.bounty;
        if (p.drawn) ghostCompleted[p.defendant]++;
    }

    /// @dev Overturned: the defendant is slashed, the consumer gets its bounty and bond back
    /// (the bond out of the slash), the rest of the slash burns.
    function _overturn(uint256 i) internal {
        Parent storage p = _parents[i];
        IJobEscrow.JobSpec memory spec = _pSpecs[i];
        p.status = Status.Settled;
        p.settledBy = SettledBy.Escalation;
        uint256 penalty = penaltyOf(i);
        uint256 bond = M * spec.bounty;
        ghostEscrowed -= spec.bounty;
        ghostLocked[p.defendant] -= spec.collateral;
        delete laneJob[p.defendant][p.lane];
        ghostStaked[p.defendant] -= penalty;
        ghostSlashed[p.defendant]++;
        ghostBurned += penalty - bond;
        _credit(i, spec.consumer, spec.bounty + bond);
    }

    /// @dev The escalation's own settlement (its judges, its bond), then its parent's.
    function _settleEscalation(uint256 x, bool filled, Observed memory before) internal {
        Esc storage e = _escs[x];
        IJobEscrow.JobSpec memory spec = _eSpecs[x];
        e.live = false;
        ghostEscrowed -= spec.bounty;
        (bytes32 winner, uint256 winners) = filled ? _tally(e) : (bytes32(0), 0);
        uint256 judgeSlashes = _settleJudges(e, spec, filled, winner, winners);
        ghostBurned += judgeSlashes;
        if (winners == 0) _credit(e.parent, spec.consumer, spec.bounty);
        Parent storage p = _parents[e.parent];
        _recordObserved(p, before, judgeSlashes);
        if (!filled) unfilledEscalations++;
        if (winner != bytes32(0) && winner != _honest(p.id)) lyingMajorities++;
        if (winner != bytes32(0) && winner != p.result) {
            _overturn(e.parent);
            outcomes[3]++;
        } else {
            _payDefendant(e.parent, SettledBy.Escalation);
            outcomes[2]++;
        }
    }

    /// @dev Winners share the bond (the lowest key gets the remainder), dissenters are
    /// slashed under a quorum and released without one, non-revealers are slashed as
    /// missed; an unfilled escalation releases every committer. Returns the total slashed.
    function _settleJudges(
        Esc storage e,
        IJobEscrow.JobSpec memory spec,
        bool filled,
        bytes32 winner,
        uint256 winners
    ) internal returns (uint256 slashed) {
        uint256 penalty = uint256(spec.collateral) * slashBps / BPS;
        uint256[] memory order = _order(e);
        bool first = true;
        for (uint256 o = 0; o < order.length; ++o) {
            Judge storage j = e.judges[order[o]];
            ghostLocked[j.provider] -= spec.collateral;
            delete laneJob[j.provider][j.lane];
            if (!filled) continue;
            uint256 taken = 0;
            if (winners > 0 && j.revealed && j.result == winner) {
                uint256 share = spec.bounty / winners;
                if (first) share += spec.bounty % winners;
                first = false;
                ghostOwed[j.provider] += share;
                if (j.drawn) ghostCompleted[j.provider]++;
            } else if (j.revealed) {
                if (winners > 0) {
                    taken = penalty;
                    ghostSlashed[j.provider]++;
                }
            } else {
                taken = penalty;
                ghostMissed[j.provider]++;
            }
            ghostStaked[j.provider] -= taken;
            slashed += taken;
        }
    }

    function _credit(uint256 i, address c, uint256 amount) internal {
        ghostOwed[c] += amount;
        _parents[i].consumerCredit += amount;
    }

    // ------------------------------------------------------------ helpers

    function _commitJudge(uint256 x, address a, uint256 lane, uint256 plan) internal {
        Esc storage e = _escs[x];
        IJobEscrow.JobSpec memory spec = _eSpecs[x];
        uint256 parentId = _parents[e.parent].id;
        IJobEscrow.JobTerms memory terms = escrow.termsOf(spec, e.draw);
        (, bool drawn,) = escrow.drawOf(e.id, terms, a);
        // Each lie in one of two variants, so that liars sometimes agree.
        bool honest = plan % 8 < 4;
        bytes32 result = honest ? _honest(parentId) : _lie(parentId, plan >> 3);
        bytes32 commitment = keccak256(abi.encode(e.id, a, result, _salt(e.id, a)));
        vm.prank(a);
        escrow.commit(e.id, terms, lane, commitment);
        bool willReveal = (plan >> 4) % 4 != 0;
        if (!willReveal) unrevealedJudges++;
        e.judges.push(Judge(a, lane, result, drawn, willReveal, false));
        if (honest) e.honestCommits++;
        laneJob[a][lane] = e.id;
        ghostLocked[a] += spec.collateral;
        calls[this.judge.selector]++;
    }

    /// @dev Asserts that a challenged parent cannot be finalized, whatever its deadlines.
    function _expectUnderChallenge(Parent storage p, IJobEscrow.JobTerms memory terms) internal {
        uint256[] memory slot = new uint256[](1);
        slot[0] = uint256(uint160(p.defendant)) << 96 | p.lane;
        try escrow.finalize(p.id, terms, slot, p.result) {
            revert("a challenged parent was finalized");
        } catch (bytes memory reason) {
            bytes memory expected =
                abi.encodeWithSelector(IJobEscrow.EscrowUnderChallenge.selector, p.id);
            require(keccak256(reason) == keccak256(expected), "EscrowUnderChallenge");
        }
        underChallengeRefusals++;
    }

    /// @dev Whether `a` may take a slot of `collateral` now (stake, free stake), and a free
    /// lane from `seed` on.
    function _canTake(address a, uint256 collateral, uint256 seed)
        internal
        view
        returns (bool, uint256)
    {
        if (ghostStaked[a] < MIN_STAKE || ghostStaked[a] - ghostLocked[a] < collateral) {
            return (false, 0);
        }
        for (uint256 i = 0; i < LANES; ++i) {
            uint256 lane = (seed % LANES + i) % LANES;
            if (laneJob[a][lane] == 0) return (true, lane);
        }
        return (false, 0);
    }

    /// @dev Whether `a` is eligible for `jobId` now or, warping forward, before the commit
    /// deadline (stake bonded before the post's block only).
    function _reachDraw(
        uint256 jobId,
        IJobEscrow.JobTerms memory terms,
        address a,
        uint256 draw,
        uint256 commitDeadline
    ) internal returns (bool) {
        if (ghostBondedAt[a] >= (draw >> 32) % 2 ** 32) return false;
        (bool eligible,, uint256 from) = escrow.drawOf(jobId, terms, a);
        if (eligible) return true;
        if (from == 0 || from > commitDeadline) return false;
        vm.warp(from);
        return true;
    }

    function _stake(address a, uint256 amount) internal {
        uint256 value = _fund(a, amount);
        vm.prank(a);
        escrow.stake{value: value}(amount);
        ghostStaked[a] += amount;
        ghostBondedAt[a] = vm.getBlockNumber();
    }

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

    /// @dev The post's block is sealed and the chain moves on: the draw is known from the
    /// next block.
    function _sealBlock() internal {
        vm.roll(vm.getBlockNumber() + 1);
        vm.warp(_now() + 1);
    }

    function _now() internal view returns (uint256) {
        return vm.getBlockTimestamp();
    }

    /// @dev resultHashOf restated: sha256(abi.encode(chainid, escrow, jobId) ++ output).
    function _result(uint256 jobId, bytes memory output) internal view returns (bytes32) {
        return sha256(bytes.concat(abi.encode(block.chainid, address(escrow), jobId), output));
    }

    function _honest(uint256 jobId) internal view returns (bytes32) {
        return _result(jobId, abi.encode("the kernel's output", jobId));
    }

    function _lie(uint256 jobId, uint256 variant) internal view returns (bytes32) {
        return _result(jobId, abi.encode("a lie", variant % 2));
    }

    function _salt(uint256 jobId, address a) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", jobId, a));
    }

    function _liveParents() internal view returns (uint256 n) {
        for (uint256 i = 0; i < _parents.length; ++i) {
            if (_parents[i].status != Status.Settled) ++n;
        }
    }

    function _pick(uint256 seed, Status status) internal view returns (bool, uint256) {
        uint256 n = _parents.length;
        for (uint256 k = 0; k < n; ++k) {
            uint256 i = (seed % n + k) % n;
            if (_parents[i].status == status) return (true, i);
        }
        return (false, 0);
    }

    /// @dev The first live escalation from `seed` on that takes commits now (`commits`), or
    /// that is full and takes reveals now.
    function _pickEsc(uint256 seed, bool commits) internal view returns (bool, uint256) {
        uint256 n = _escs.length;
        uint256 now_ = _now();
        for (uint256 k = 0; k < n; ++k) {
            uint256 x = (seed % n + k) % n;
            Esc storage e = _escs[x];
            if (!e.live) continue;
            bool full = e.judges.length == M;
            if (commits && !full && now_ <= _eSpecs[x].commitDeadline) return (true, x);
            if (!commits && full && now_ <= _eSpecs[x].revealDeadline) return (true, x);
        }
        return (false, 0);
    }

    function _judges(Esc storage e, address a) internal view returns (bool) {
        for (uint256 k = 0; k < e.judges.length; ++k) {
            if (e.judges[k].provider == a) return true;
        }
        return false;
    }

    function _revealedCount(Esc storage e) internal view returns (uint256 n) {
        for (uint256 k = 0; k < e.judges.length; ++k) {
            if (e.judges[k].revealed) ++n;
        }
    }

    /// @dev The hash revealed by a quorum of the judges, and how many revealed it.
    function _tally(Esc storage e) internal view returns (bytes32 winner, uint256 count) {
        uint256 n = e.judges.length;
        for (uint256 a = 0; a < n; ++a) {
            if (!e.judges[a].revealed) continue;
            uint256 c = 0;
            for (uint256 b = 0; b < n; ++b) {
                if (e.judges[b].revealed && e.judges[b].result == e.judges[a].result) ++c;
            }
            if (c >= QUORUM) return (e.judges[a].result, c);
        }
    }

    function _key(Judge storage j) internal view returns (uint256) {
        return uint256(uint160(j.provider)) << 96 | j.lane;
    }

    /// @dev Judge indexes in ascending key order.
    function _order(Esc storage e) internal view returns (uint256[] memory idx) {
        uint256 n = e.judges.length;
        idx = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            idx[i] = i;
        }
        for (uint256 i = 0; i < n; ++i) {
            for (uint256 k = i + 1; k < n; ++k) {
                if (_key(e.judges[idx[k]]) < _key(e.judges[idx[i]])) {
                    (idx[i], idx[k]) = (idx[k], idx[i]);
                }
            }
        }
    }

    /// @dev Every judge's key but judge `skip`'s, ascending.
    function _keysWithout(Esc storage e, uint256 skip) internal view returns (uint256[] memory k) {
        uint256[] memory idx = _order(e);
        k = new uint256[](skip < idx.length ? idx.length - 1 : idx.length);
        uint256 n = 0;
        for (uint256 i = 0; i < idx.length; ++i) {
            if (idx[i] != skip) k[n++] = _key(e.judges[idx[i]]);
        }
    }

    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (x >= min && x <= max) return x;
        return min + x % (max - min + 1);
    }
}
