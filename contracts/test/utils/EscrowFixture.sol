// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {JobEscrow} from "../../src/JobEscrow.sol";
import {IJobEscrow} from "../../src/interfaces/IJobEscrow.sol";
import {TestToken} from "../../src/test/TestToken.sol";

/// @notice A market (one JobEscrow) in ETH or ERC-20 mode, funded actors and
/// helpers for each protocol step. Concrete tests pick the mode with `_tokenMode`.
abstract contract EscrowFixture is Test {
    uint256 internal constant SLASH_BPS = 5000;
    uint256 internal constant UNBONDING = 7 days;
    uint256 internal constant MIN_STAKE = 1 ether;
    uint256 internal constant MAX_REPLICAS = 16;
    uint256 internal constant START = 1_000_000;

    JobEscrow internal escrow;
    TestToken internal token;
    address internal assetAddr;

    address internal consumer;
    address internal alice;
    address internal bob;
    address internal carol;

    /// @dev Claimers of each job, in claim order, recorded by `_claim` (what a node reads from
    /// ReplicaClaimed): the last reveal and finalize take them.
    mapping(uint256 jobId => address[]) internal _claimers;

    /// @dev true: the market's asset is a TestToken; false: native ETH.
    function _tokenMode() internal pure virtual returns (bool);

    function setUp() public virtual {
        vm.warp(START);
        if (_tokenMode()) {
            token = new TestToken("Test USD", "TUSD");
            assetAddr = address(token);
        }
        escrow = new JobEscrow(assetAddr, SLASH_BPS, UNBONDING, MIN_STAKE, MAX_REPLICAS);
        consumer = makeAddr("consumer");
        // Three providers in ascending address order, as finalize wants them.
        address[3] memory p = [makeAddr("p1"), makeAddr("p2"), makeAddr("p3")];
        _sort(p);
        (alice, bob, carol) = (p[0], p[1], p[2]);
        _fund(consumer, 1000 ether);
        _fund(alice, 1000 ether);
        _fund(bob, 1000 ether);
        _fund(carol, 1000 ether);
    }

    /// @dev Gives `who` `amount` of the asset and approves the escrow for it.
    function _fund(address who, uint256 amount) internal {
        if (_tokenMode()) {
            token.mint(who, amount);
            vm.startPrank(who);
            token.approve(address(escrow), type(uint256).max);
            vm.stopPrank();
        } else {
            vm.deal(who, who.balance + amount);
        }
    }

    function _assetBalance(address who) internal view returns (uint256) {
        return _tokenMode() ? token.balanceOf(who) : who.balance;
    }

    /// @dev Stake (bonded + unbonding) the escrow holds for `providers`.
    function _stakeHeld(address[] memory providers) internal view returns (uint256 total) {
        for (uint256 i = 0; i < providers.length; ++i) {
            (uint256 staked,, uint256 unbonding,) = escrow.stakeOf(providers[i]);
            total += staked + unbonding;
        }
    }

    /// @dev What the escrow holds beyond the stakes of alice, bob and carol.
    function _heldBeyondStakes() internal view returns (uint256) {
        return _assetBalance(address(escrow)) - _stakeHeld(_list(alice, bob, carol));
    }

    function _value(uint256 amount) internal pure returns (uint256) {
        return _tokenMode() ? 0 : amount;
    }

    function _stake(address provider, uint256 amount) internal {
        vm.prank(provider);
        escrow.stake{value: _value(amount)}(amount);
    }

    /// @dev A valid spec: k replicas, quorum k/2 + 1, deadlines 1h / 2h / 3h from now.
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
        spec.claimDeadline = uint40(block.timestamp + 1 hours);
        spec.commitDeadline = uint40(block.timestamp + 2 hours);
        spec.revealDeadline = uint40(block.timestamp + 3 hours);
        spec.inputLocation = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExamplePeer";
    }

    function _post(IJobEscrow.JobSpec memory spec) internal returns (uint256 jobId) {
        vm.prank(spec.consumer);
        jobId = escrow.postJob{value: _value(spec.bounty)}(spec);
    }

    function _claim(uint256 jobId, IJobEscrow.JobSpec memory spec, address provider) internal {
        vm.prank(provider);
        escrow.claim(jobId, _terms(spec));
        _claimers[jobId].push(provider);
    }

    /// @dev The spec's JobTerms, packed here independently of JobTermsLib (a test checks
    /// both agree), so tests can build them without a call before vm.expectRevert.
    function _terms(IJobEscrow.JobSpec memory spec)
        internal
        pure
        returns (IJobEscrow.JobTerms memory t)
    {
        t.payment = uint256(uint160(spec.consumer)) * 2 ** 96 + spec.bounty;
        t.rules = spec.collateral + uint256(spec.replicas) * 2 ** 96 + uint256(spec.quorum) * 2
            ** 104 + uint256(spec.minReputation) * 2 ** 112 + uint256(spec.claimDeadline) * 2 ** 144
            + uint256(spec.commitDeadline) * 2 ** 176 + uint256(spec.revealDeadline) * 2 ** 208;
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

    function _salt(address provider) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", provider));
    }

    function _commit(
        uint256 jobId,
        IJobEscrow.JobSpec memory spec,
        address provider,
        bytes32 resultHash
    ) internal {
        bytes32 c = escrow.commitmentOf(jobId, provider, resultHash, _salt(provider));
        vm.prank(provider);
        escrow.commit(jobId, _terms(spec), c);
    }

    /// @dev Reveals as a node does: passing every other claimer (sorted) in case this is
    /// the last reveal, and no quorum hint.
    function _reveal(
        uint256 jobId,
        IJobEscrow.JobSpec memory spec,
        address provider,
        bytes32 resultHash
    ) internal {
        _revealHint(jobId, spec, provider, resultHash, bytes32(0));
    }

    function _revealHint(
        uint256 jobId,
        IJobEscrow.JobSpec memory spec,
        address provider,
        bytes32 resultHash,
        bytes32 quorumHash
    ) internal {
        address[] memory others = _othersOf(jobId, provider);
        vm.prank(provider);
        escrow.reveal(jobId, _terms(spec), resultHash, _salt(provider), others, quorumHash);
    }

    /// @dev The claimers of `jobId` but `provider`, in ascending order.
    function _othersOf(uint256 jobId, address provider)
        internal
        view
        returns (address[] memory others)
    {
        address[] storage all = _claimers[jobId];
        uint256 n = 0;
        others = new address[](all.length);
        for (uint256 i = 0; i < all.length; ++i) {
            if (all[i] != provider) others[n++] = all[i];
        }
        assembly ("memory-safe") {
            mstore(others, n)
        }
        _sortList(others);
    }

    function _none() internal pure returns (address[] memory) {
        return new address[](0);
    }

    function _sortList(address[] memory p) internal pure {
        for (uint256 i = 0; i < p.length; ++i) {
            for (uint256 j = i + 1; j < p.length; ++j) {
                if (p[j] < p[i]) (p[i], p[j]) = (p[j], p[i]);
            }
        }
    }

    function _finalize(
        uint256 jobId,
        IJobEscrow.JobSpec memory spec,
        address[] memory providers,
        bytes32 resultHash
    ) internal {
        escrow.finalize(jobId, _terms(spec), providers, resultHash);
    }

    function _list(address a, address b) internal pure returns (address[] memory l) {
        l = new address[](2);
        (l[0], l[1]) = (a, b);
    }

    function _list(address a) internal pure returns (address[] memory l) {
        l = new address[](1);
        l[0] = a;
    }

    function _list(address a, address b, address c) internal pure returns (address[] memory l) {
        l = new address[](3);
        (l[0], l[1], l[2]) = (a, b, c);
    }

    function _sort(address[3] memory p) internal pure {
        for (uint256 i = 0; i < 3; ++i) {
            for (uint256 j = i + 1; j < 3; ++j) {
                if (p[j] < p[i]) (p[i], p[j]) = (p[j], p[i]);
            }
        }
    }
}
