// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";
import {TestToken} from "../../src/test/TestToken.sol";

/// @notice A market (one JobEscrow) in ETH or ERC-20 mode, funded actors and helpers for
/// each protocol step. Concrete tests pick the mode with `_tokenMode`.
/// The helpers restate the v2 rules from IJobEscrow's notes (terms packing with the draw
/// word, tickets from the post block's hash, the total stake as the post's block found it
/// (stake moved earlier in that block does not count; the fixture keeps each block's
/// starting total, see `_noteBlockStart`) rounded up to 40 significant bits, stake bonded
/// in a block before the post's (`_bondedBefore`), eligibility,
/// result hashes, commitments) independently of the contract,
/// so tests compare the contract against the rule rather than against itself. Every post
/// helper but `_postInBlock` seals the post's block (sets its hash) and moves to the next
/// block, where the draw is known.
abstract contract EscrowFixture is Test {
    uint256 internal constant SLASH_BPS = 5000;
    uint256 internal constant MIN_STAKE = 1 ether;
    uint256 internal constant MAX_REPLICAS = 16;
    uint256 internal constant MIN_COMMIT = 10 minutes;
    uint256 internal constant MIN_REVEAL = 5 minutes;
    uint256 internal constant MAX_HORIZON = 1 days;
    uint256 internal constant CHALLENGE_WINDOW = 1 hours;
    uint256 internal constant ESCALATION_REPLICAS = 3;
    uint256 internal constant START = 1_000_000;
    uint256 internal constant BPS = 10_000;
    /// @dev Threshold doublings over a commit window (DrawLib.DOUBLINGS, restated).
    uint256 internal constant DOUBLINGS = 8;

    JobEscrow internal escrow;
    TestToken internal token;
    address internal assetAddr;

    address internal consumer;
    address internal alice;
    address internal bob;
    address internal carol;

    /// @dev What tests and nodes read from JobPosted / ReplicaCommitted: each job's spec,
    /// draw word (postBlock << 32 | postedAt), post time and slots (`uint160(provider) << 96
    /// | lane`, in commit order); and what the fixture knows of its draw: the post block's
    /// hash (set here after the post, as a chain fixes it once the block is sealed) and the
    /// market's total stake at the post.
    mapping(uint256 jobId => IJobEscrow.JobSpec) internal _specOf;
    mapping(uint256 jobId => uint256) internal _drawOf;
    mapping(uint256 jobId => uint256) internal _postedAt;
    mapping(uint256 jobId => bytes32) internal _postHashOf;
    mapping(uint256 jobId => uint256) internal _totalAtPost;
    mapping(uint256 jobId => uint256[]) internal _slots;
    /// @dev The rule for the draw's denominator, restated: a post draws against the total
    /// stake as its block found it. For each block in which the helpers moved the total
    /// (stake, unstake, slashing settlements), the total before the first such move.
    mapping(uint256 blockNumber => bool) internal _totalMovedIn;
    mapping(uint256 blockNumber => uint256) internal _totalAtBlockStart;

    /// @dev true: the market's asset is a TestToken; false: native ETH.
    function _tokenMode() internal pure virtual returns (bool);

    function _params() internal view virtual returns (IJobEscrow.Params memory p) {
        p.asset = assetAddr;
        p.slashBps = SLASH_BPS;
        p.minStake = MIN_STAKE;
        p.maxReplicas = MAX_REPLICAS;
        p.minCommitWindow = MIN_COMMIT;
        p.minRevealWindow = MIN_REVEAL;
        p.maxHorizon = MAX_HORIZON;
        p.challengeWindow = CHALLENGE_WINDOW;
        p.escalationReplicas = ESCALATION_REPLICAS;
    }

    function setUp() public virtual {
        vm.warp(START);
        if (_tokenMode()) {
            token = new TestToken("Test USD", "TUSD");
            assetAddr = address(token);
        }
        escrow = new JobEscrow(_params());
        consumer = makeAddr("consumer");
        // Three providers in ascending address order.
        address[3] memory p = [makeAddr("p1"), makeAddr("p2"), makeAddr("p3")];
        for (uint256 i = 0; i < 3; ++i) {
            for (uint256 j = i + 1; j < 3; ++j) {
                if (p[j] < p[i]) (p[i], p[j]) = (p[j], p[i]);
            }
        }
        (alice, bob, carol) = (p[0], p[1], p[2]);
        _fund(consumer, 1000 ether);
        _fund(alice, 1000 ether);
        _fund(bob, 1000 ether);
        _fund(carol, 1000 ether);
    }

    // ------------------------------------------------------------ funds

    /// @dev Gives `who` `amount` of the asset and approves the escrow for it.
    function _fund(address who, uint256 amount) internal {
        if (_tokenMode()) {
            token.mint(who, amount);
            vm.prank(who);
            token.approve(address(escrow), type(uint256).max);
        } else {
            vm.deal(who, who.balance + amount);
        }
    }

    function _assetBalance(address who) internal view returns (uint256) {
        return _tokenMode() ? token.balanceOf(who) : who.balance;
    }

    function _value(uint256 amount) internal pure returns (uint256) {
        return _tokenMode() ? 0 : amount;
    }

    function _stake(address provider, uint256 amount) internal {
        _noteBlockStart();
        vm.prank(provider);
        escrow.stake{value: _value(amount)}(amount);
    }

    function _unstake(address provider, uint256 amount) internal {
        _noteBlockStart();
        vm.prank(provider);
        escrow.unstake(amount);
    }

    /// @dev Stakes `amount` for alice, bob and carol, then moves to the next block, so that
    /// the stake is in the draw of jobs posted from now (bondedAt < postBlock).
    function _stakeAll(uint256 amount) internal {
        _stake(alice, amount);
        _stake(bob, amount);
        _stake(carol, amount);
        _nextBlock();
    }

    /// @dev Seals this block and moves one block (and, as most chains' clocks do, one second)
    /// on: stake moved so far counts in the draw of jobs posted from now, in both the
    /// numerator (bondedAt < postBlock) and the denominator (the total as the post's block
    /// found it). The block alone decides; the second is not needed (see `_bondedBefore`).
    function _nextBlock() internal {
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 1);
    }

    /// @dev Call before anything that may move the total stake (stake, unstake, a settlement
    /// that slashes): keeps the total as this block found it, the first time in each block.
    function _noteBlockStart() internal {
        if (_totalMovedIn[block.number]) return;
        _totalMovedIn[block.number] = true;
        _totalAtBlockStart[block.number] = escrow.totalStake();
    }

    /// @dev The total stake as this block found it (before stake moved by its earlier
    /// transactions through the helpers above): what a post in this block draws against.
    function _totalAsBlockFoundIt() internal view returns (uint256) {
        return _totalMovedIn[block.number] ? _totalAtBlockStart[block.number] : escrow.totalStake();
    }

    function _stakedOf(address p) internal view returns (uint256 staked) {
        (staked,,) = escrow.stakeOf(p);
    }

    function _lockedOf(address p) internal view returns (uint256 locked) {
        (, locked,) = escrow.stakeOf(p);
    }

    /// @dev What the escrow must hold: every listed account's stake and credited balance,
    /// plus `bounties` still escrowed, plus everything burned.
    function _owed(address[] memory accounts, uint256 bounties) internal view returns (uint256) {
        uint256 owed = bounties + escrow.burned();
        for (uint256 i = 0; i < accounts.length; ++i) {
            owed += _stakedOf(accounts[i]) + escrow.balanceOf(accounts[i]);
        }
        return owed;
    }

    function _penalty(uint256 collateral) internal pure returns (uint256) {
        return collateral * SLASH_BPS / BPS;
    }

    // ------------------------------------------------------------ specs and terms

    /// @dev A valid spec: k replicas, quorum k/2 + 1, commit window 1 h, reveal window 1 h.
    function _spec(uint8 k) internal view returns (IJobEscrow.JobSpec memory spec) {
        spec.consumer = consumer;
        spec.kernelId = keccak256("kernel");
        spec.inputHash = keccak256("input");
        spec.inputSize = 4096;
        spec.maxOutputSize = 4096;
        spec.bounty = 3 ether;
        spec.collateral = 1 ether;
        spec.replicas = k;
        spec.quorum = k / 2 + 1;
        spec.minReputation = 0;
        spec.commitDeadline = uint40(block.timestamp + 1 hours);
        spec.revealDeadline = uint40(block.timestamp + 2 hours);
        spec.inputLocation = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExamplePeer";
    }

    /// @dev Posts `spec`, records it, fixes its post block's hash and moves to the next
    /// block: the draw is known from there on (commits in the post's block revert).
    function _post(IJobEscrow.JobSpec memory spec) internal returns (uint256 jobId) {
        jobId = _postInBlock(spec);
        _sealPostBlock(jobId);
    }

    /// @dev Posts `spec` and records it, staying in the post's block (the draw is not fixed).
    function _postInBlock(IJobEscrow.JobSpec memory spec) internal returns (uint256 jobId) {
        uint256 total = _totalAsBlockFoundIt();
        vm.prank(spec.consumer);
        jobId = escrow.postJob{value: _value(spec.bounty)}(spec);
        _record(jobId, spec, total);
    }

    /// @dev Records a job posted in this block (by any caller) with the total stake `total`
    /// its draw is against (the total as the post's block found it, `_totalAsBlockFoundIt`).
    function _record(uint256 jobId, IJobEscrow.JobSpec memory spec, uint256 total) internal {
        _specOf[jobId] = spec;
        _drawOf[jobId] = block.number << 32 | block.timestamp;
        _postedAt[jobId] = block.timestamp;
        _totalAtPost[jobId] = total;
    }

    /// @dev Seals the post's block with a hash of its own (one per block number) and moves
    /// to the next block, as the chain does after every post.
    function _sealPostBlock(uint256 jobId) internal {
        uint256 postBlock = (_drawOf[jobId] >> 32) % 2 ** 32;
        _setPostHash(jobId, keccak256(abi.encode("block hash", postBlock)));
        vm.roll(postBlock + 1);
    }

    /// @dev Sets the hash of `jobId`'s post block (and so of every job posted in it).
    function _setPostHash(uint256 jobId, bytes32 hash) internal {
        vm.setBlockhash((_drawOf[jobId] >> 32) % 2 ** 32, hash);
        _postHashOf[jobId] = hash;
    }

    /// @dev Posts `spec` and seals its block with `hash`.
    function _postWithHash(IJobEscrow.JobSpec memory spec, bytes32 hash)
        internal
        returns (uint256 jobId)
    {
        jobId = _post(spec);
        _setPostHash(jobId, hash);
    }

    /// @dev The terms of `spec` posted with `draw` = postBlock << 32 | postedAt, packed here
    /// independently of JobTermsLib (a test checks both agree).
    function _termsFor(IJobEscrow.JobSpec memory spec, uint256 draw)
        internal
        pure
        returns (IJobEscrow.JobTerms memory t)
    {
        uint256 postedAt = draw % 2 ** 32;
        uint256 postBlock = draw / 2 ** 32 % 2 ** 32;
        t.payment = uint256(uint160(spec.consumer)) * 2 ** 96 + spec.bounty;
        t.rules = spec.collateral + uint256(spec.quorum) * 2 ** 96 + uint256(spec.replicas) * 2
            ** 104 + uint256(spec.minReputation) * 2 ** 112 + postBlock * 2 ** 128 + postedAt * 2
            ** 160 + uint256(spec.commitDeadline) * 2 ** 192 + uint256(spec.revealDeadline) * 2
            ** 224 + (draw / 2 ** 64) * 2 ** 102;
        t.detailsHash = keccak256(
            abi.encode(
                spec.kernelId,
                spec.inputHash,
                spec.inputSize,
                spec.maxOutputSize,
                spec.inputLocation
            )
        );
    }

    function _terms(uint256 jobId) internal view returns (IJobEscrow.JobTerms memory) {
        return _termsFor(_specOf[jobId], _drawOf[jobId]);
    }

    // ------------------------------------------------------------ the draw, restated

    /// @dev The job's seed: its post block's hash, as the fixture sealed it.
    function _seedOf(uint256 jobId) internal view returns (bytes32) {
        return _postHashOf[jobId];
    }

    function _ticket(bytes32 postHash, uint256 jobId, address provider)
        internal
        pure
        returns (uint256)
    {
        return uint64(uint256(keccak256(abi.encode(postHash, jobId, provider))));
    }

    /// @dev The draw's denominator: the total stake at the post rounded up to 40 significant
    /// bits (exact below 2^40), as the job stores it.
    function _roundedTotal(uint256 total) internal pure returns (uint256) {
        uint256 bits = 0;
        for (uint256 x = total; x != 0; x /= 2) {
            ++bits;
        }
        if (bits <= 40) return total;
        uint256 unit = 2 ** (bits - 40);
        return (total + unit - 1) / unit * unit;
    }

    function _drawTotalOf(uint256 jobId) internal view returns (uint256) {
        return _roundedTotal(_totalAtPost[jobId]);
    }

    /// @dev Threshold doublings at `t` for a job posted at `postedAt` with `commitDeadline`.
    function _stepsAt(uint256 t, uint256 postedAt, uint256 commitDeadline)
        internal
        pure
        returns (uint256)
    {
        if (t <= postedAt) return 0;
        uint256 s = (t - postedAt) * DOUBLINGS / (commitDeadline - postedAt);
        return s > DOUBLINGS ? DOUBLINGS : s;
    }

    /// @dev The job's post block (the draw word's high half).
    function _postBlockOf(uint256 jobId) internal view returns (uint256) {
        return (_drawOf[jobId] >> 32) % 2 ** 32;
    }

    /// @dev The rule's "bonded before the post": the block in which `provider`'s stake last
    /// grew is before the post's block (bondedAt < postBlock; block numbers, not timestamps:
    /// the same clock as the denominator, so stake bonded in an earlier block counts in both
    /// and stake bonded in the post's block in neither, whatever the blocks' timestamps).
    function _bondedBefore(uint256 jobId, address provider) internal view returns (bool) {
        (,, uint256 bondedAt) = escrow.stakeOf(provider);
        return bondedAt < _postBlockOf(jobId);
    }

    /// @dev Whether `provider` with its current stake passes `ticket` in `jobId` at `steps`
    /// doublings: u * drawTotal < replicas * staked * 2^(64 + steps), where drawTotal is the
    /// total stake at the post (not now).
    function _passes(uint256 jobId, uint256 ticket, address provider, uint256 steps)
        internal
        view
        returns (bool)
    {
        uint256 replicas = _specOf[jobId].replicas;
        return ticket * _drawTotalOf(jobId) < (replicas * _stakedOf(provider)) << (64 + steps);
    }

    /// @dev The rule's eligibleFrom: the first second at which `provider`'s ticket passes,
    /// 0 if never before the commit deadline or if its stake is not bonded before the post.
    function _eligibleFromRule(uint256 jobId, address provider) internal view returns (uint256) {
        if (!_bondedBefore(jobId, provider)) return 0;
        IJobEscrow.JobSpec storage spec = _specOf[jobId];
        uint256 u = _ticket(_seedOf(jobId), jobId, provider);
        uint256 postedAt = _postedAt[jobId];
        for (uint256 t = postedAt; t <= spec.commitDeadline; ++t) {
            if (_passes(jobId, u, provider, _stepsAt(t, postedAt, spec.commitDeadline))) {
                return t;
            }
        }
        return 0;
    }

    /// @dev eligibleFrom from the steps: the first second of the first step s whose
    /// threshold the ticket passes, postedAt + ceil(s * window / DOUBLINGS); 0 if none or if
    /// its stake is not bonded before the post.
    function _eligibleFromSteps(uint256 jobId, address provider) internal view returns (uint256) {
        if (!_bondedBefore(jobId, provider)) return 0;
        IJobEscrow.JobSpec storage spec = _specOf[jobId];
        uint256 u = _ticket(_seedOf(jobId), jobId, provider);
        uint256 postedAt = _postedAt[jobId];
        uint256 window = spec.commitDeadline - postedAt;
        for (uint256 s = 0; s <= DOUBLINGS; ++s) {
            if (_passes(jobId, u, provider, s)) {
                return postedAt + (s * window + DOUBLINGS - 1) / DOUBLINGS;
            }
        }
        return 0;
    }

    /// @dev The first post block hash (keccak256 of 1, 2, ...) under which every `drawn`
    /// provider is drawn at the base rate for `jobId` and every `notDrawn` one is not.
    function _findHash(uint256 jobId, address[] memory drawn, address[] memory notDrawn)
        internal
        view
        returns (bytes32 hash)
    {
        for (uint256 i = 1; i < 100_000; ++i) {
            hash = keccak256(abi.encode(i));
            bool ok = true;
            for (uint256 j = 0; ok && j < drawn.length; ++j) {
                ok = _passes(jobId, _ticket(hash, jobId, drawn[j]), drawn[j], 0);
            }
            for (uint256 j = 0; ok && j < notDrawn.length; ++j) {
                ok = !_passes(jobId, _ticket(hash, jobId, notDrawn[j]), notDrawn[j], 0);
            }
            if (ok) return hash;
        }
        revert("no block hash found");
    }

    /// @dev The first post block hash (keccak256 of `from`, `from + 1`, ...) under which
    /// `who` fails `jobId`'s threshold at `steps` doublings.
    function _hashFailing(uint256 jobId, address who, uint256 steps, uint256 from)
        internal
        view
        returns (bytes32 hash)
    {
        for (uint256 i = from; i < from + 10_000; ++i) {
            hash = keccak256(abi.encode(i));
            if (!_passes(jobId, _ticket(hash, jobId, who), who, steps)) return hash;
        }
        revert("no block hash found");
    }

    /// @dev Posts `spec` and seals its block with a hash that draws exactly as asked.
    function _postDrawing(
        IJobEscrow.JobSpec memory spec,
        address[] memory drawn,
        address[] memory notDrawn
    ) internal returns (uint256 jobId) {
        jobId = _post(spec);
        _setPostHash(jobId, _findHash(jobId, drawn, notDrawn));
    }

    /// @dev Posts `spec` and seals its block with a hash under which `who` is not drawn at
    /// `steps` doublings.
    function _postFailing(IJobEscrow.JobSpec memory spec, address who, uint256 steps)
        internal
        returns (uint256 jobId)
    {
        jobId = _post(spec);
        _setPostHash(jobId, _hashFailing(jobId, who, steps, 1));
    }

    // ------------------------------------------------------------ results and slots

    /// @dev resultHashOf restated: sha256(abi.encode(chainid, escrow, jobId) ++ output).
    function _result(uint256 jobId, bytes memory output) internal view returns (bytes32) {
        return sha256(bytes.concat(abi.encode(block.chainid, address(escrow), jobId), output));
    }

    function _good(uint256 jobId) internal view returns (bytes32) {
        return _result(jobId, "good output");
    }

    function _bad(uint256 jobId, uint256 variant) internal view returns (bytes32) {
        return _result(jobId, abi.encode("bad output", variant));
    }

    function _salt(uint256 jobId, address provider, uint256 lane) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", jobId, provider, lane));
    }

    /// @dev commitmentOf restated: keccak256(abi.encode(jobId, provider, resultHash, salt)).
    function _commitment(uint256 jobId, address provider, uint256 lane, bytes32 resultHash)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(jobId, provider, resultHash, _salt(jobId, provider, lane)));
    }

    function _key(address provider, uint256 lane) internal pure returns (uint256) {
        return uint256(uint160(provider)) << 96 | lane;
    }

    function _commit(uint256 jobId, address provider, uint256 lane, bytes32 resultHash) internal {
        IJobEscrow.JobTerms memory t = _terms(jobId);
        vm.prank(provider);
        escrow.commit(jobId, t, lane, _commitment(jobId, provider, lane, resultHash));
        _slots[jobId].push(_key(provider, lane));
    }

    /// @dev Every slot of `jobId`, ascending (what finalize takes).
    function _allSlots(uint256 jobId) internal view returns (uint256[] memory list) {
        list = _sorted(_slots[jobId]);
    }

    /// @dev Every slot of `jobId` but (provider, lane), ascending (what the last reveal takes).
    function _others(uint256 jobId, address provider, uint256 lane)
        internal
        view
        returns (uint256[] memory list)
    {
        uint256[] storage all = _slots[jobId];
        uint256 self = _key(provider, lane);
        list = new uint256[](all.length);
        uint256 n = 0;
        for (uint256 i = 0; i < all.length; ++i) {
            if (all[i] != self) list[n++] = all[i];
        }
        assembly ("memory-safe") {
            mstore(list, n)
        }
        list = _sorted(list);
    }

    function _sorted(uint256[] memory a) internal pure returns (uint256[] memory l) {
        l = new uint256[](a.length);
        for (uint256 i = 0; i < a.length; ++i) {
            l[i] = a[i];
        }
        for (uint256 i = 0; i < l.length; ++i) {
            for (uint256 j = i + 1; j < l.length; ++j) {
                if (l[j] < l[i]) (l[i], l[j]) = (l[j], l[i]);
            }
        }
    }

    /// @dev Reveals as a node does: every other slot, in case this is the last reveal.
    function _reveal(uint256 jobId, address provider, uint256 lane, bytes32 resultHash) internal {
        _revealHint(jobId, provider, lane, resultHash, bytes32(0));
    }

    function _revealHint(
        uint256 jobId,
        address provider,
        uint256 lane,
        bytes32 resultHash,
        bytes32 quorumHash
    ) internal {
        uint256[] memory others = _others(jobId, provider, lane);
        IJobEscrow.JobTerms memory t = _terms(jobId);
        bytes32 salt = _salt(jobId, provider, lane);
        _noteBlockStart(); // the last reveal settles, and may slash
        vm.prank(provider);
        escrow.reveal(jobId, t, lane, resultHash, salt, others, quorumHash);
    }

    function _finalize(uint256 jobId, bytes32 resultHash) internal {
        _noteBlockStart(); // a settlement may slash
        escrow.finalize(jobId, _terms(jobId), _allSlots(jobId), resultHash);
    }

    function _isLive(uint256 jobId) internal view returns (bool) {
        (bytes24 h,,,) = escrow.jobState(jobId);
        return h != bytes24(0);
    }

    // ------------------------------------------------------------ lists

    function _list(address a) internal pure returns (address[] memory l) {
        l = new address[](1);
        l[0] = a;
    }

    function _list(address a, address b) internal pure returns (address[] memory l) {
        l = new address[](2);
        (l[0], l[1]) = (a, b);
    }

    function _list(address a, address b, address c) internal pure returns (address[] memory l) {
        l = new address[](3);
        (l[0], l[1], l[2]) = (a, b, c);
    }

    function _none() internal pure returns (address[] memory) {
        return new address[](0);
    }

    function _keys(uint256 a) internal pure returns (uint256[] memory l) {
        l = new uint256[](1);
        l[0] = a;
    }

    function _keys(uint256 a, uint256 b) internal pure returns (uint256[] memory l) {
        l = new uint256[](2);
        (l[0], l[1]) = (a, b);
    }

    function _keys(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory l) {
        l = new uint256[](3);
        (l[0], l[1], l[2]) = (a, b, c);
    }
}
