// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IStaking} from "./IStaking.sol";

/// @title ShareThePower market: stakes, bounties, k-of-n commit-reveal, settlement, payouts
/// @notice One contract per market holds provider stakes (see IStaking), job bounties and
/// credited balances. A consumer posts a job with its whole bounty. Up to `replicas`
/// providers claim a slot each (locking `collateral` of their stake), commit to the hash of
/// their output and reveal it. **The reveal that completes a job settles it**: when every
/// replica has revealed, that last `reveal` runs the whole settlement in the same
/// transaction (the result hash revealed by at least `quorum` replicas wins). `finalize`
/// (anyone) settles every other case once a deadline allows it: replicas that never
/// committed or revealed, a job short of claims, a job never claimed. Earnings and refunds
/// are credited here and pulled with `withdraw`.
///
/// Only 24 bytes of the spec's hash are stored per job; the full spec is emitted in
/// `JobPosted`. Every later call passes back the job's `JobTerms` (`termsOf(spec)`: the
/// fields the rules read, plus a hash of the others), which that stored hash binds.
///
/// Replica state lives in per-provider lanes: job `jobId` uses lane `jobId % LANES` of each
/// of its claimers. A lane is reused by later jobs (so claims write a slot that is already
/// non-zero); a provider cannot hold two live jobs whose ids share a lane (EscrowLaneBusy).
/// Claimers are not listed on-chain: the last reveal and `finalize` take them (from
/// `ReplicaClaimed`) in calldata and check each against its lane.
///
/// Timing: claims while `now <= claimDeadline`; commits while `now <= commitDeadline`;
/// reveals once all `replicas` committed or `now > commitDeadline`, while
/// `now <= revealDeadline`. A job with fewer than `replicas` claims after `claimDeadline`
/// is unfilled: no more commits or reveals; finalizing it refunds the consumer and releases
/// every claimer's collateral without penalty. A filled job is settled by its last reveal,
/// or else finalizable once `now > revealDeadline`.
///
/// Settlement of a filled job (the same whether the last reveal or finalize runs it):
/// winners (revealed the quorum hash) share the bounty equally, the first winner in address
/// order also gets the division remainder; their collateral is unlocked and `completed`
/// counted. A replica that revealed another hash is slashed (`slashed` counted), one that
/// never committed or revealed is slashed too (`missed` counted). Without a quorum the
/// consumer gets the bounty back, replicas that revealed are released without penalty, the
/// others are slashed as missed. Everything slashed is credited to the consumer. A
/// settlement only moves internal balances (no transfer, no external call, no arithmetic
/// that can overflow: credits beyond 96 bits spill into a wide slot, counters saturate), so
/// it cannot make a valid last reveal revert. No admin exists; no one else can move funds.
interface IJobEscrow is IStaking {
    /// @notice A job's specification. Only its hash is stored; pass it back unchanged.
    struct JobSpec {
        /// @dev The posting account; must be msg.sender of postJob.
        address consumer;
        /// @dev sha256 of the kernel's canonical encoding.
        bytes32 kernelId;
        /// @dev sha256 of the input bytes.
        bytes32 inputHash;
        /// @dev Input size in bytes.
        uint64 inputSize;
        /// @dev Upper bound of the output size in bytes.
        uint64 maxOutputSize;
        /// @dev Total bounty, split equally among the winning replicas.
        uint96 bounty;
        /// @dev Stake each replica locks as collateral.
        uint96 collateral;
        /// @dev Number of replicas k, 1..maxReplicas.
        uint8 replicas;
        /// @dev Quorum q: k/2 < q <= k, so at most one result hash can win.
        uint8 quorum;
        /// @dev Minimum reputation score of a claimer.
        uint32 minReputation;
        /// @dev Last second (inclusive) to claim; must be in the future at post.
        uint40 claimDeadline;
        /// @dev Last second (inclusive) to commit; > claimDeadline.
        uint40 commitDeadline;
        /// @dev Last second (inclusive) to reveal; > commitDeadline.
        uint40 revealDeadline;
        /// @dev Where to fetch the input (libp2p peer id / multiaddr), opaque here.
        bytes inputLocation;
    }

    /// @notice What every call after postJob passes back: the spec's fields the rules read,
    /// packed into two words, and a hash of the others; `termsOf(spec)` builds it (layout in
    /// JobTermsLib). The job stores the first 24 bytes of keccak256(abi.encode(terms)).
    struct JobTerms {
        /// @dev consumer << 96 | bounty.
        uint256 payment;
        /// @dev revealDeadline << 208 | commitDeadline << 176 | claimDeadline << 144 |
        /// minReputation << 112 | quorum << 104 | replicas << 96 | collateral.
        uint256 rules;
        /// @dev keccak256(abi.encode(kernelId, inputHash, inputSize, maxOutputSize,
        /// inputLocation)).
        bytes32 detailsHash;
    }

    /// @notice How a job ended.
    enum Outcome {
        Completed,
        NoQuorum,
        Unfilled,
        Cancelled
    }

    /// @notice Per-replica phase, as returned by `replicaOf`.
    enum ReplicaStatus {
        None,
        Claimed,
        Committed,
        Revealed
    }

    /// @notice No live job `jobId` matches the given terms (never posted, wrong spec, or
    /// already finalized or cancelled).
    error EscrowJobNotFound(uint256 jobId);
    /// @notice The spec is invalid at post; `reason` names the rule (see postJob).
    error EscrowInvalidSpec(bytes32 reason);
    /// @notice msg.value must equal the bounty in ETH mode and be zero in ERC-20 mode.
    error EscrowWrongValue(uint256 sent, uint256 expected);
    /// @notice The claim deadline passed at `deadline`.
    error EscrowClaimClosed(uint256 jobId, uint256 deadline);
    /// @notice All replica slots of the job are taken.
    error EscrowJobFull(uint256 jobId);
    /// @notice The caller already holds a slot of this job.
    error EscrowAlreadyClaimed(uint256 jobId, address provider);
    /// @notice The caller is not in the phase this call needs (`status` is its phase).
    error EscrowWrongReplicaStatus(uint256 jobId, address provider, ReplicaStatus status);
    /// @notice The commit deadline passed at `deadline`.
    error EscrowCommitClosed(uint256 jobId, uint256 deadline);
    /// @notice Reveals open when all replicas committed or after `commitDeadline`.
    error EscrowRevealNotOpen(uint256 jobId, uint256 commitDeadline);
    /// @notice The reveal deadline passed at `deadline`.
    error EscrowRevealClosed(uint256 jobId, uint256 deadline);
    /// @notice The job did not fill its replicas by the claim deadline.
    error EscrowJobUnfilled(uint256 jobId);
    /// @notice The revealed result and salt do not open the stored commitment.
    error EscrowCommitmentMismatch(uint256 jobId, address provider);
    /// @notice The job cannot be finalized before `notBefore` (a deadline + 1).
    error EscrowNotFinalizable(uint256 jobId, uint256 notBefore);
    /// @notice The provider list must hold exactly the expected claimers, in strictly
    /// ascending address order: every claimer for finalize (`expected` = claimed), every
    /// claimer but the caller for the last reveal (`expected` = replicas - 1); `given`
    /// entries were passed.
    error EscrowWrongReplicaSet(uint256 jobId, uint256 given, uint256 expected);
    /// @notice `provider` holds no slot of the job.
    error EscrowNotReplica(uint256 jobId, address provider);
    /// @notice Another result hash reached the quorum; pass that one (to finalize as
    /// `resultHash`, to the last reveal as `quorumHash`).
    error EscrowNotQuorumResult(uint256 jobId, bytes32 resultHash);
    /// @notice Only the job's consumer may cancel it.
    error EscrowNotConsumer(uint256 jobId, address caller);
    /// @notice A job with claimed slots cannot be cancelled.
    error EscrowAlreadyClaimedJob(uint256 jobId, uint256 claimed);
    /// @notice The withdrawal exceeds the credited balance.
    error EscrowInsufficientBalance(uint256 balance, uint256 requested);
    /// @notice Nothing to withdraw (zero amount or zero balance).
    error EscrowNothingToWithdraw();
    /// @notice The caller's lane `jobId % LANES` holds live job `busyJobId`: it cannot
    /// claim `jobId` until that job settles.
    error EscrowLaneBusy(uint256 jobId, address provider, uint256 busyJobId);
    /// @notice Sending native ETH failed.
    error EscrowEtherTransferFailed(address to, uint256 amount);
    /// @notice A deploy parameter is outside its allowed range.
    error EscrowParameterOutOfRange(bytes32 name, uint256 value);

    /// @notice Job `jobId` was posted by `consumer` with `spec`; its bounty is escrowed.
    event JobPosted(uint256 indexed jobId, address indexed consumer, JobSpec spec);
    /// @notice `provider` claimed a slot of `jobId`, locking the job's collateral.
    event ReplicaClaimed(uint256 indexed jobId, address indexed provider);
    /// @notice `provider` committed `commitment` for `jobId`.
    event ReplicaCommitted(uint256 indexed jobId, address indexed provider, bytes32 commitment);
    /// @notice `provider` revealed `resultHash` for `jobId`.
    event ReplicaRevealed(uint256 indexed jobId, address indexed provider, bytes32 resultHash);
    /// @notice `jobId` ended with `outcome` (emitted by finalize, or by the reveal that
    /// completed the job). `resultHash` is the winning hash (zero without a quorum),
    /// `winners` how many replicas revealed it, `slashed` the total slashed.
    event JobFinalized(
        uint256 indexed jobId, Outcome outcome, bytes32 resultHash, uint256 winners, uint256 slashed
    );
    /// @notice The consumer cancelled `jobId` before any claim; the bounty was credited back.
    event JobCancelled(uint256 indexed jobId);
    /// @notice `provider`'s replica of `jobId` was settled as `settlement`: its collateral
    /// was unlocked, `slashed` of it taken (credited to the consumer), `payout` credited to
    /// its balance, and its reputation counted.
    event ReplicaSettled(
        uint256 indexed jobId,
        address indexed provider,
        Settlement settlement,
        uint256 payout,
        uint256 slashed
    );
    /// @notice `amount` was credited to the consumer `account`'s withdrawable balance for
    /// `jobId` (refund, and slashed collateral). Winners' payouts are in ReplicaSettled.
    event BalanceCredited(address indexed account, uint256 indexed jobId, uint256 amount);
    /// @notice `account` pre-paid its balance slot and lanes `[0, lanes)` (see openAccount).
    event AccountOpened(address indexed account, uint256 lanes);
    /// @notice `account` withdrew `amount` to its wallet.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice Posts a job and escrows its bounty: ETH mode sends exactly `spec.bounty` as
    /// msg.value; ERC-20 mode approves this contract first. Rules: consumer == msg.sender,
    /// bounty > 0, 1 <= replicas <= maxReplicas, replicas/2 < quorum <= replicas,
    /// now < claimDeadline < commitDeadline < revealDeadline < 2^32, inputLocation at most
    /// MAX_INPUT_LOCATION bytes.
    /// @return jobId The new job's id (a counter starting at 1).
    function postJob(JobSpec calldata spec) external payable returns (uint256 jobId);

    /// @notice Claims one replica slot of `jobId` for msg.sender, locking `terms.collateral`
    /// of its free stake; needs the market's minimum stake, a score >= minReputation and a
    /// free lane `jobId % LANES`.
    function claim(uint256 jobId, JobTerms calldata terms) external;

    /// @notice Commits `commitment` = commitmentOf(jobId, msg.sender, resultHash, salt).
    /// Its first 184 bits are stored.
    function commit(uint256 jobId, JobTerms calldata terms, bytes32 commitment) external;

    /// @notice Reveals the committed `resultHash` (sha256 of the output bytes) and `salt`.
    /// The reveal that completes the job (every replica has now revealed) also settles it in
    /// this transaction, exactly as finalize would (ReplicaSettled for each replica,
    /// BalanceCredited to the consumer when owed, JobFinalized; the job is deleted). The
    /// last two arguments are only read by that last reveal, so earlier reveals may pass
    /// `[]` and zero; a caller that may be last passes them (what they cost is calldata):
    /// `others`: every claimer but msg.sender (from ReplicaClaimed), in strictly ascending
    /// address order; the last reveal reverts with EscrowWrongReplicaSet or
    /// EscrowNotReplica otherwise. Empty for a single-replica job.
    /// `quorumHash`: used only if `resultHash` is not the quorum result: the hash a quorum of
    /// the other replicas revealed (from ReplicaRevealed); if another hash reached the quorum
    /// and `quorumHash` is not it, the last reveal reverts with EscrowNotQuorumResult.
    /// Nothing another party can do makes a correct last reveal revert: the claimer set is
    /// fixed once reveals open, lanes only change by their owner's calls or a settlement,
    /// and the settlement itself cannot fail (see the contract notes).
    function reveal(
        uint256 jobId,
        JobTerms calldata terms,
        bytes32 resultHash,
        bytes32 salt,
        address[] calldata others,
        bytes32 quorumHash
    ) external;

    /// @notice Settles `jobId` on every path the last reveal does not: anyone may call once
    /// `now > claimDeadline` for a job short of claims (unfilled, or never claimed), or once
    /// `now > revealDeadline` for a filled job (some replica never committed or revealed);
    /// EscrowNotFinalizable before, EscrowJobNotFound once the job was settled (by its last
    /// reveal or an earlier finalize) or cancelled. `providers`: every claimer (from
    /// ReplicaClaimed), in strictly ascending address order. `resultHash`: the hash revealed
    /// by a quorum if there is one (any value otherwise; the call reverts with
    /// EscrowNotQuorumResult if another hash has a quorum).
    function finalize(
        uint256 jobId,
        JobTerms calldata terms,
        address[] calldata providers,
        bytes32 resultHash
    ) external;

    /// @notice Cancels an unclaimed job; only its consumer. The bounty is credited back.
    function cancel(uint256 jobId, JobTerms calldata terms) external;

    /// @notice One-time provider set-up (optional): pre-pays the storage slots of the
    /// caller's balance and of its lanes `[0, lanes)` (lanes <= LANES), so that its claims
    /// and settlements write slots that are already non-zero (~17k gas less each) instead
    /// of paying for a fresh slot the first time each is used.
    function openAccount(uint256 lanes) external;

    /// @notice Sends the caller's whole credited balance to it.
    function withdraw() external;

    /// @notice Sends `amount` of the caller's credited balance to it.
    function withdraw(uint256 amount) external;

    /// @notice The credited, withdrawable balance of `account`.
    function balanceOf(address account) external view returns (uint256);

    /// @notice A live job's stored terms hash prefix and counters; all zero once the job is
    /// settled (by its last reveal or finalize) or cancelled, or if it never existed: history
    /// lives in the events. `revealed` never reaches `replicas` on a live job: the reveal
    /// that would make it so settles and deletes the job.
    function jobState(uint256 jobId)
        external
        view
        returns (bytes24 specHash, uint8 claimed, uint8 committed, uint8 revealed);

    /// @notice `provider`'s phase in a live job (None once the job is finalized).
    function replicaOf(uint256 jobId, address provider) external view returns (ReplicaStatus);

    /// @notice The live job held in `provider`'s lane `jobId % LANES`, 0 if it is free: a
    /// provider can claim `jobId` only while this is 0.
    function laneJobOf(uint256 jobId, address provider) external view returns (uint256);

    /// @notice The id the next posted job gets.
    function nextJobId() external view returns (uint256);

    /// @notice keccak256(abi.encode(jobId, provider, resultHash, salt)): what to commit.
    function commitmentOf(uint256 jobId, address provider, bytes32 resultHash, bytes32 salt)
        external
        pure
        returns (bytes32);

    /// @notice keccak256(abi.encode(termsOf(spec))); its first 24 bytes are stored per job.
    function specHashOf(JobSpec calldata spec) external pure returns (bytes32);

    /// @notice The terms that claim, commit, reveal, finalize and cancel take for `spec`.
    function termsOf(JobSpec calldata spec) external pure returns (JobTerms memory);
    /// @notice The payment asset: address(0) for native ETH, else the ERC-20.
    function asset() external view returns (address);
    /// @notice Fraction of a failing replica's collateral that is slashed, in basis points.
    function slashBps() external view returns (uint256);
    /// @notice Largest allowed `replicas` of a job.
    function maxReplicas() external view returns (uint256);
}
