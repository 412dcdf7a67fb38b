// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFixture} from "./utils/EscrowFixture.sol";
import {Vm} from "./utils/Vm.sol";
import {JobEscrow} from "../src/JobEscrow.sol";
import {IJobEscrow} from "../src/interfaces/IJobEscrow.sol";
import {IStaking} from "../src/interfaces/IStaking.sol";

/// @notice Deploy parameters and postJob: every spec rule, the window bounds at +-1 s, the
/// strict-majority quorum, the draw word (post block and time) and the total stake snapshot,
/// the JobPosted event, terms packing, result hashes.
abstract contract JobEscrowPostTest is EscrowFixture {
    // ---------------------------------------------------------------- deploy

    function test_constructor_setsParameters() public view {
        assertEq(escrow.asset(), assetAddr, "asset");
        assertEq(escrow.slashBps(), SLASH_BPS, "slashBps");
        assertEq(escrow.minStake(), MIN_STAKE, "minStake");
        assertEq(escrow.maxReplicas(), MAX_REPLICAS, "maxReplicas");
        (uint256 c, uint256 r, uint256 h) = escrow.windows();
        assertEq(c, MIN_COMMIT, "minCommitWindow");
        assertEq(r, MIN_REVEAL, "minRevealWindow");
        assertEq(h, MAX_HORIZON, "maxHorizon");
        assertEq(escrow.nextJobId(), 1, "first id");
        assertEq(escrow.totalStake(), 0, "no stake");
        assertEq(escrow.burned(), 0, "nothing burned");
        assertEq(escrow.LANE_LIMIT(), 2 ** 96, "lane limit");
    }

    function _expectParam(IJobEscrow.Params memory p, bytes4 selector, bytes32 name, uint256 v)
        internal
    {
        vm.expectRevert(abi.encodeWithSelector(selector, name, v));
        new JobEscrow(p);
    }

    function test_constructor_revertsOnOutOfRangeParameters() public {
        bytes4 stakeSel = IStaking.StakeParameterOutOfRange.selector;
        bytes4 escrowSel = IJobEscrow.EscrowParameterOutOfRange.selector;
        IJobEscrow.Params memory p = _params();
        p.asset = address(0xBEEF); // not a contract
        _expectParam(p, stakeSel, "asset", uint256(uint160(p.asset)));
        p = _params();
        p.slashBps = 0;
        _expectParam(p, stakeSel, "slashBps", 0);
        p.slashBps = BPS + 1;
        _expectParam(p, stakeSel, "slashBps", BPS + 1);
        p = _params();
        p.minStake = 0;
        _expectParam(p, stakeSel, "minStake", 0);
        p.minStake = 2 ** 96;
        _expectParam(p, stakeSel, "minStake", 2 ** 96);
        p = _params();
        p.maxReplicas = 0;
        _expectParam(p, escrowSel, "maxReplicas", 0);
        p.maxReplicas = 17;
        _expectParam(p, escrowSel, "maxReplicas", 17);
        p = _params();
        p.minCommitWindow = 0;
        _expectParam(p, escrowSel, "minCommitWindow", 0);
        p = _params();
        p.minRevealWindow = 0;
        _expectParam(p, escrowSel, "minRevealWindow", 0);
        p = _params();
        p.maxHorizon = MIN_COMMIT + MIN_REVEAL - 1;
        _expectParam(p, escrowSel, "maxHorizon", p.maxHorizon);
        p.maxHorizon = 365 days + 1;
        _expectParam(p, escrowSel, "maxHorizon", p.maxHorizon);
        // The bounds themselves are accepted.
        p = _params();
        (p.slashBps, p.minStake, p.maxReplicas) = (BPS, type(uint96).max, 16);
        p.maxHorizon = MIN_COMMIT + MIN_REVEAL;
        new JobEscrow(p);
        (p.slashBps, p.minStake, p.maxReplicas, p.maxHorizon) = (1, 1, 1, 365 days);
        new JobEscrow(p);
    }

    function test_receive_rejectsPlainEther() public {
        vm.deal(alice, 1 ether);
        vm.prank(alice);
        (bool ok,) = address(escrow).call{value: 1}("");
        assertTrue(!ok, "no receive: ether only comes with stake or postJob");
    }

    // ---------------------------------------------------------------- postJob

    function test_postJob_escrowsBountyAndEmitsDrawAndSpec() public {
        _stakeAll(10 ether);
        IJobEscrow.JobSpec memory s = _spec(3);
        vm.roll(4321);
        uint256 draw = uint256(4321) << 32 | block.timestamp;
        uint256 before = _assetBalance(consumer);
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobPosted(1, consumer, draw, s);
        vm.prank(consumer);
        uint256 jobId = escrow.postJob{value: _value(s.bounty)}(s);
        assertEq(jobId, 1, "id");
        assertEq(escrow.nextJobId(), 2, "next id");
        assertEq(_assetBalance(consumer), before - s.bounty, "paid");
        assertEq(_assetBalance(address(escrow)), s.bounty + 30 ether, "held");
        (bytes24 h, uint8 c, uint8 r, uint256 drawTotal) = escrow.jobState(jobId);
        bytes32 full = keccak256(abi.encode(_termsFor(s, draw)));
        assertEq(bytes32(h), bytes32(bytes24(full)), "stored terms hash prefix");
        assertEq(escrow.specHashOf(s, draw), full, "specHashOf");
        assertEq(uint256(c) + r, 0, "counters");
        assertEq(drawTotal, _roundedTotal(30 ether), "the total stake at the post, rounded up");
        assertLt(drawTotal - 30 ether, 2 ** 26, "30 ether has 65 bits: 25 rounded off");
    }

    /// The stored total is the total at the post, rounded up to 40 significant bits; stake
    /// moved afterwards does not change it.
    function test_postJob_snapshotsTheTotalStake() public {
        _stake(alice, 3 ether + 1); // 3e18 + 1 needs 62 bits: rounded up
        _nextBlock();
        uint256 total = escrow.totalStake();
        uint256 jobId = _post(_spec(1));
        (,,, uint256 drawTotal) = escrow.jobState(jobId);
        assertEq(drawTotal, _roundedTotal(total), "rounded up as the rule says");
        assertGt(drawTotal, total, "never in a provider's favour");
        assertLt(drawTotal - total, total >> 39, "relative error below 2^-39");
        _stake(carol, 500 ether);
        _unstake(alice, 1 ether);
        (,,, uint256 after_) = escrow.jobState(jobId);
        assertEq(after_, drawTotal, "stake moved after the post leaves it");
        _nextBlock(); // the moves' block is sealed: the next post's block finds them
        uint256 next = _post(_spec(1));
        (,,, uint256 nextTotal) = escrow.jobState(next);
        assertEq(nextTotal, _roundedTotal(escrow.totalStake()), "the next post snapshots anew");
        _finalizeUnfilled(jobId);
        (,,, after_) = escrow.jobState(jobId);
        assertEq(after_, 0, "zero once settled");
    }

    function _finalizeUnfilled(uint256 jobId) internal {
        vm.warp(uint256(_specOf[jobId].commitDeadline) + 1);
        _finalize(jobId, bytes32(0));
    }

    /// The terms hold the post's block number in 32 bits: a chain past block 2^32 - 1 takes
    /// no posts.
    function test_postJob_revertsPastBlock2Pow32() public {
        vm.roll(2 ** 32 - 1);
        uint256 jobId = _post(_spec(1));
        assertEq(_drawOf[jobId] >> 32, 2 ** 32 - 1, "the last block that fits");
        assertEq(_terms(jobId).rules >> 128 & (2 ** 32 - 1), 2 ** 32 - 1, "postBlock in the terms");
        vm.roll(2 ** 32);
        _expectPostRevert(
            _spec(1),
            abi.encodeWithSelector(
                IJobEscrow.EscrowParameterOutOfRange.selector, bytes32("block"), 2 ** 32
            )
        );
    }

    /// The draw word is the post's block number and timestamp: each block its own draw.
    function test_postJob_drawIsPostBlockAndTime() public {
        vm.recordLogs();
        uint256 jobId = _post(_spec(1));
        uint256 other = _post(_spec(1));
        uint256[] memory draws = _postedDraws(vm.getRecordedLogs());
        assertEq(draws.length, 2, "two posts");
        assertEq(draws[0], _drawOf[jobId], "first post's draw");
        assertEq(draws[1], _drawOf[other], "second post's draw");
        assertEq(_drawOf[other] >> 32, (_drawOf[jobId] >> 32) + 1, "a block later");
        assertEq(_drawOf[jobId] % 2 ** 32, block.timestamp, "postedAt");
    }

    /// @dev The `draw` topic of every JobPosted among `logs`.
    function _postedDraws(Vm.Log[] memory logs) internal view returns (uint256[] memory draws) {
        draws = new uint256[](logs.length);
        uint256 n = 0;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(escrow)) continue;
            if (logs[i].topics[0] != IJobEscrow.JobPosted.selector) continue;
            draws[n++] = uint256(logs[i].topics[3]);
        }
        assembly ("memory-safe") {
            mstore(draws, n)
        }
    }

    function test_termsOf_matchesIndependentPacking() public {
        IJobEscrow.JobSpec memory s = _spec(5);
        s.minReputation = 65_535;
        s.collateral = type(uint96).max;
        s.bounty = type(uint96).max - 1;
        uint256 draw = type(uint64).max; // postBlock and postedAt at their 32-bit limits
        IJobEscrow.JobTerms memory t = escrow.termsOf(s, draw);
        IJobEscrow.JobTerms memory mine = _termsFor(s, draw);
        assertEq(t.payment, mine.payment, "payment word");
        assertEq(t.rules, mine.rules, "rules word");
        assertEq(t.detailsHash, mine.detailsHash, "details hash");
        mine = _termsFor(s, uint256(7) << 32 | 9);
        assertEq(escrow.termsOf(s, uint256(7) << 32 | 9).rules, mine.rules, "small draw");
        assertEq(mine.rules >> 128 & (2 ** 32 - 1), 7, "postBlock at bit 128");
        assertEq(mine.rules >> 160 & (2 ** 32 - 1), 9, "postedAt at bit 160");
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobEscrow.EscrowParameterOutOfRange.selector, bytes32("draw"), 2 ** 66
            )
        );
        escrow.termsOf(s, 2 ** 66);
        // The kind bits (64: optimistic, 65: escalation) land at 102 and 103, above the quorum.
        uint256 rules = escrow.termsOf(s, uint256(3) << 64 | uint256(7) << 32 | 9).rules;
        assertEq(rules >> 102 & 3, 3, "kind at bit 102");
        assertEq(rules >> 96 & 0x3f, s.quorum, "quorum below it");
        assertEq(rules & ~(uint256(3) << 102), mine.rules, "nothing else moves");
    }

    function _expectInvalid(IJobEscrow.JobSpec memory spec, bytes32 reason) internal {
        _expectPostRevert(
            spec, abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, reason)
        );
    }

    function _expectPostRevert(IJobEscrow.JobSpec memory spec, bytes memory err) internal {
        vm.prank(consumer);
        vm.expectRevert(err);
        escrow.postJob{value: _value(spec.bounty)}(spec);
    }

    function test_postJob_revertsOnInvalidSpec() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        s.consumer = alice;
        _expectInvalid(s, "consumer");
        s = _spec(3);
        s.bounty = 0;
        _expectInvalid(s, "bounty");
        s = _spec(3);
        (s.replicas, s.quorum) = (0, 1);
        _expectInvalid(s, "replicas");
        s = _spec(3);
        (s.replicas, s.quorum) = (17, 9);
        _expectInvalid(s, "replicas");
        s = _spec(3);
        s.inputLocation = new bytes(257);
        _expectInvalid(s, "inputLocation");
        s = _spec(3);
        s.minReputation = 65_536; // the terms hold 16 bits
        _expectInvalid(s, "minReputation");
        s.minReputation = type(uint32).max;
        _expectInvalid(s, "minReputation");
        // The largest allowed values pass.
        s = _spec(16);
        s.inputLocation = new bytes(256);
        s.minReputation = 65_535;
        uint256 jobId = _post(s);
        assertEq(_terms(jobId).rules >> 112 & 0xffff, 65_535, "minReputation in the terms");
    }

    /// Quorum is exactly the strict majority k / 2 + 1 for every k: one less is not a
    /// majority, one more lets a single dissenter force NoQuorum (attack 5).
    function test_postJob_quorumMustBeStrictMajority() public {
        for (uint8 k = 1; k <= MAX_REPLICAS; ++k) {
            IJobEscrow.JobSpec memory s = _spec(k);
            uint8 majority = k / 2 + 1;
            assertGt(2 * uint256(majority), k, "a strict majority");
            assertLe(2 * uint256(majority - 1), k, "the least one");
            s.quorum = majority - 1;
            _expectInvalid(s, "quorum");
            if (majority < k) {
                s.quorum = majority + 1;
                _expectInvalid(s, "quorum");
            }
            s.quorum = k; // unanimity, unless k / 2 + 1 == k (k = 1, 2)
            if (k > 2) _expectInvalid(s, "quorum");
            s.quorum = majority;
            _post(s);
        }
    }

    function test_postJob_commitWindowAtLeastMinimum() public {
        IJobEscrow.JobSpec memory s = _spec(1);
        s.commitDeadline = uint40(block.timestamp + MIN_COMMIT - 1);
        _expectPostRevert(
            s,
            abi.encodeWithSelector(
                IJobEscrow.EscrowWindowTooShort.selector,
                bytes32("commit"),
                MIN_COMMIT - 1,
                MIN_COMMIT
            )
        );
        // A deadline in the past is a window of length zero.
        s.commitDeadline = uint40(block.timestamp - 1);
        _expectPostRevert(
            s,
            abi.encodeWithSelector(
                IJobEscrow.EscrowWindowTooShort.selector, bytes32("commit"), 0, MIN_COMMIT
            )
        );
        s.commitDeadline = uint40(block.timestamp + MIN_COMMIT);
        uint256 jobId = _post(s);
        assertTrue(_isLive(jobId), "exactly the minimum is accepted");
    }

    function test_postJob_revealWindowAtLeastMinimum() public {
        IJobEscrow.JobSpec memory s = _spec(1);
        s.revealDeadline = uint40(s.commitDeadline + MIN_REVEAL - 1);
        _expectPostRevert(
            s,
            abi.encodeWithSelector(
                IJobEscrow.EscrowWindowTooShort.selector,
                bytes32("reveal"),
                MIN_REVEAL - 1,
                MIN_REVEAL
            )
        );
        // The issue's attack 2: revealDeadline = commitDeadline + 1.
        s.revealDeadline = s.commitDeadline + 1;
        _expectPostRevert(
            s,
            abi.encodeWithSelector(
                IJobEscrow.EscrowWindowTooShort.selector, bytes32("reveal"), 1, MIN_REVEAL
            )
        );
        s.revealDeadline = s.commitDeadline - 1;
        _expectPostRevert(
            s,
            abi.encodeWithSelector(
                IJobEscrow.EscrowWindowTooShort.selector, bytes32("reveal"), 0, MIN_REVEAL
            )
        );
        s.revealDeadline = uint40(s.commitDeadline + MIN_REVEAL);
        assertTrue(_isLive(_post(s)), "exactly the minimum is accepted");
    }

    function test_postJob_revealDeadlineWithinHorizon() public {
        IJobEscrow.JobSpec memory s = _spec(1);
        uint256 latest = block.timestamp + MAX_HORIZON;
        s.commitDeadline = uint40(latest - MIN_REVEAL);
        s.revealDeadline = uint40(latest + 1);
        _expectPostRevert(
            s, abi.encodeWithSelector(IJobEscrow.EscrowDeadlineTooFar.selector, latest + 1, latest)
        );
        // The issue's attack 3: deadlines in 2106.
        s.commitDeadline = type(uint32).max - 1 days;
        s.revealDeadline = type(uint32).max;
        _expectPostRevert(
            s,
            abi.encodeWithSelector(
                IJobEscrow.EscrowDeadlineTooFar.selector, s.revealDeadline, latest
            )
        );
        s.commitDeadline = uint40(latest - MIN_REVEAL);
        s.revealDeadline = uint40(latest);
        assertTrue(_isLive(_post(s)), "exactly the horizon is accepted");
    }

    function test_postJob_horizonStopsAt32BitTimestamps() public {
        uint256 last = type(uint32).max;
        vm.warp(last - 2 hours);
        IJobEscrow.JobSpec memory s = _spec(1);
        s.commitDeadline = uint40(last - 1 hours);
        s.revealDeadline = uint40(last + 1);
        _expectPostRevert(
            s, abi.encodeWithSelector(IJobEscrow.EscrowDeadlineTooFar.selector, last + 1, last)
        );
        s.revealDeadline = uint40(last);
        assertTrue(_isLive(_post(s)), "2^32 - 1 is the last deadline");
    }

    function test_postJob_revertsOnWrongValue() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        uint256 wrong = _tokenMode() ? 1 : s.bounty - 1;
        vm.deal(consumer, consumer.balance + 1);
        vm.prank(consumer);
        vm.expectRevert(
            abi.encodeWithSelector(IJobEscrow.EscrowWrongValue.selector, wrong, _value(s.bounty))
        );
        escrow.postJob{value: wrong}(s);
    }

    /// JobPosted carries the calldata: only the canonical encoding is accepted, and dirty
    /// padding after the input location is zeroed in the event.
    function test_postJob_acceptsOnlyCanonicalEncoding() public {
        IJobEscrow.JobSpec memory s = _spec(3);
        bytes memory data = abi.encodeCall(escrow.postJob, (s));
        bytes memory invalid =
            abi.encodeWithSelector(IJobEscrow.EscrowInvalidSpec.selector, bytes32("encoding"));
        vm.roll(5);
        vm.startPrank(consumer);
        vm.expectRevert(invalid);
        _rawPost(bytes.concat(data, bytes32(0)), s.bounty);
        bytes memory shifted = bytes.concat(
            bytes4(data), bytes32(uint256(0x40)), bytes32(0), _slice(data, 36, data.length)
        );
        vm.expectRevert(invalid);
        _rawPost(shifted, s.bounty);
        bytes memory dirty = bytes.concat(data);
        dirty[dirty.length - 1] = 0xff;
        vm.expectEmit(address(escrow));
        emit IJobEscrow.JobPosted(1, consumer, uint256(5) << 32 | block.timestamp, s);
        _rawPost(dirty, s.bounty);
        vm.stopPrank();
        assertEq(escrow.nextJobId(), 2, "posted once");
    }

    function _rawPost(bytes memory data, uint256 bounty) internal {
        (bool ok, bytes memory ret) = address(escrow).call{value: _value(bounty)}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    // ---------------------------------------------------------------- hashes

    /// resultHashOf = sha256(resultPrefixOf(jobId) ++ output), the prefix being
    /// abi.encode(chainid, escrow, jobId): it differs per job, per contract and per chain for
    /// the same output.
    function test_resultHashOf_bindsChainContractAndJob() public {
        bytes memory output = "some output";
        bytes32 h = escrow.resultHashOf(7, output);
        assertEq(h, _result(7, output), "definition");
        assertEq(
            keccak256(escrow.resultPrefixOf(7)),
            keccak256(abi.encode(block.chainid, address(escrow), uint256(7))),
            "prefix"
        );
        assertNotEq(h, escrow.resultHashOf(8, output), "other job");
        assertNotEq(h, escrow.resultHashOf(7, "other output"), "other output");
        assertNotEq(h, sha256(output), "not the bare output digest");
        JobEscrow twin = new JobEscrow(_params());
        assertNotEq(h, twin.resultHashOf(7, output), "other contract");
        uint256 chain = block.chainid;
        vm.chainId(chain + 1);
        assertNotEq(h, escrow.resultHashOf(7, output), "other chain");
        assertEq(
            escrow.resultHashOf(7, output),
            sha256(bytes.concat(abi.encode(chain + 1, address(escrow), uint256(7)), output)),
            "reads the chain id"
        );
    }

    function test_commitmentOf_definition() public view {
        bytes32 r = keccak256("r");
        bytes32 salt = keccak256("s");
        assertEq(
            escrow.commitmentOf(3, alice, r, salt),
            keccak256(abi.encode(uint256(3), alice, r, salt)),
            "keccak256(abi.encode(jobId, provider, resultHash, salt))"
        );
    }
}

contract JobEscrowPostEthTest is JobEscrowPostTest {
    function _tokenMode() internal pure override returns (bool) {
        return false;
    }
}

contract JobEscrowPostTokenTest is JobEscrowPostTest {
    function _tokenMode() internal pure override returns (bool) {
        return true;
    }
}
