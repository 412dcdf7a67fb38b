// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IStaking} from "./IStaking.sol";

/// @dev Most specs one postJobs call takes (interfaces cannot hold constants; JobEscrow
/// serves it as MAX_BATCH).
uint256 constant MAX_POST_BATCH = 256;

/// @title ShareThePower market (protocol v2): stakes, bounties, drawn replicas, commit-reveal,
/// settlement, payouts
/// @notice One contract per market holds provider stakes (see IStaking), job bounties and
/// credited balances. No admin exists; no one but an account itself moves its funds.
///
/// **Post.** A consumer posts a job with its whole bounty. Windows are bounded at deploy:
/// `commitDeadline >= now + minCommitWindow`, `revealDeadline >= commitDeadline +
/// minRevealWindow`, `revealDeadline <= now + maxHorizon` (custom errors name the rule). The
/// quorum is the strict majority `replicas / 2 + 1`. The post fixes the job's draw: its
/// block (`postBlock`, `postedAt`, emitted in `JobPosted` as `draw = postBlock << 32 |
/// postedAt` and part of the terms) and the market's total stake as the post's block found it
/// (`jobState`'s `drawTotal`: stake added within that block, say a flash loan staked,
/// posted against and unstaked in one transaction, does not count).
///
/// **Drawn, then committed.** Who may take a slot is decided by stake-weighted lot. A
/// provider's ticket is `u = uint64(keccak256(abi.encode(blockhash(postBlock), jobId,
/// provider)))`; it is *eligible* at time `t` if its stake was bonded in a block before
/// the post's (`bondedAt < postBlock`: the same clock as `drawTotal`) and
///     u * drawTotal < replicas * staked * 2^(64 + steps(t)),
///     steps(t) = DOUBLINGS * (t - postedAt) / (commitDeadline - postedAt),
/// i.e. with probability `min(1, replicas * share * 2^steps)` for a stake share `share`:
/// about `replicas` providers are eligible at first, and the threshold doubles every eighth
/// of the commit window so that a job on a small network still fills. A provider eligible
/// at `steps = 0` was *drawn*: only such work counts as `completed` in reputation. Stake
/// added or removed after the post changes neither the denominator nor anyone else's odds.
/// Stake held across the post's block does count: whoever has the capital can dilute every
/// provider's base odds alike (its own identities' too) for the price of holding it.
/// An eligible provider fetches the input and runs the kernel first, and only then takes a
/// slot together with its commitment (`commit`, one transaction). A job it cannot fetch or
/// run costs it nothing: it simply never commits.
///
/// **Seed bias.** The post block's hash is unknown to every transaction in that block,
/// the post itself included, so a consumer cannot test the draw and post only when it
/// suits it. The builder of that block can grind it (reordering or altering the block), so
/// on an L2 whose sequencer builds every block the market is only as fair as that
/// sequencer. Commits are refused in the post's own block (EscrowDrawNotFixed) and once its
/// hash is out of reach: 256 blocks, or 8191 where the EIP-2935 history contract exists
/// (EscrowDrawExpired; the job then ends unfilled and is refunded). Choose windows that fit:
/// commit windows shorter than 8191 blocks.

/// **Lanes.** A replica lives in one of its provider's lanes (any index the provider picks;
/// `openAccount` pre-pays lanes so that the first use costs no fresh slot). A provider can
/// hold as many live jobs as it has lanes; only its own calls and settlements change its
/// lanes, so nobody else can provoke a conflict. A provider holding two slots of one job
/// (two lanes) is settled as Missed on both, and neither counts toward the quorum.
///
/// **Reveal** opens once all `replicas` slots are taken, until `revealDeadline`. The result
/// hash a replica reveals is `resultHashOf(jobId, output)` = sha256 of the job's identity
/// (chain id, contract, job id) followed by the output bytes: no hash revealed in one job is
/// worth anything in another.
///
/// **Settlement.** The reveal that completes a job settles it in the same transaction;
/// `finalize` (anyone) settles the rest once a deadline allows it: a job short of slots
/// after `commitDeadline` is *unfilled* (bounty refunded, every committer released without
/// penalty); a filled job with a missing reveal after `revealDeadline`. The hash revealed
/// by a quorum wins: its replicas share the bounty (the lowest address also gets the
/// division remainder) and get their collateral back; a replica that revealed another hash
/// is slashed, one that never revealed is slashed as missed. Without a quorum the consumer
/// is refunded, revealers are released, non-revealers slashed. **Slashed collateral is
/// burned**: it stays in this contract for good (`burned`), never credited to anyone, so
/// nobody - least of all the job's consumer - profits from a slash. A settlement only moves
/// internal balances (no transfer, no external call, no arithmetic that can overflow), so
/// nothing another party does can make a valid last reveal or finalize revert.
///
/// **Optimistic jobs** (`postOptimisticJob`, one replica) are paid only after a challenge
/// window: the replica's commit carries its result hash in the clear (nobody else takes a
/// slot, so there is nothing to copy) and the job can be finalized once
/// `revealDeadline + challengeWindow` passed. Until then its consumer may `challenge` it with
/// a bond of `escalationReplicas * bounty`. The challenge posts an *escalation* job: the
/// same kernel and input for `escalationReplicas` fresh replicas (drawn by the same lot from
/// the challenge's block, the defendant excluded), the bond as its bounty, the parent's
/// collateral and window lengths. Its replicas hash their output under the parent's identity
/// (`resultHashOf(parentId, output)`), so their quorum hash is compared with the
/// defendant's. The escalation settles like any job (its winners share the bond, its
/// dissenters are slashed), and its settlement settles the parent: a quorum for another hash
/// overturns it (Outcome.Overturned: the defendant is slashed, the consumer refunded its
/// bounty and its bond, paid out of the slash, the rest of which is burned); the same hash,
/// no quorum or an unfilled escalation pay the defendant as if unchallenged (so withholding
/// the input from the escalation gains the consumer nothing). An optimistic job's collateral
/// must be such that the slash covers the bond. The consumer is never paid more than it put
/// in: P1 holds.
///
/// Only 24 bytes of the terms' hash are stored per job; the full spec is emitted in
/// `JobPosted`. Every later call passes back the job's `JobTerms` (`termsOf(spec, draw)`),
/// which that stored hash binds.
interface IJobEscrow is IStaking {
    /// @notice A job's specification. Only the hash of its terms is stored.
    struct JobSpec {
        /// @dev The posting account; must be msg.sender of postJob.
        address consumer;
        /// @dev sha256 of the kernel's canonical encoding.
        bytes32 kernelId;
        /// @dev BLAKE3 hash of the input bytes (as `b3sum` prints it; the contract never
        /// computes it). Fetchers check the off-chain manifest's chunk chaining values
        /// against it before fetching, then each 1 MiB chunk as it arrives, so every input
        /// byte is hashed once.
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
        /// @dev Quorum q: must be the strict majority k / 2 + 1.
        uint8 quorum;
        /// @dev Minimum reputation score of a replica, at most 65535.
        uint32 minReputation;
        /// @dev Last second (inclusive) to commit; at least minCommitWindow after the post.
        uint40 commitDeadline;
        /// @dev Last second (inclusive) to reveal; at least minRevealWindow after
        /// commitDeadline, at most maxHorizon after the post.
        uint40 revealDeadline;
        /// @dev Where to fetch the input (libp2p peer id / multiaddr), opaque here.
        bytes inputLocation;
    }

    /// @notice What every call after postJob passes back: the spec's fields the rules read,
    /// packed into two words, and a hash of the others (layout in JobTermsLib). The job
    /// stores the first 24 bytes of keccak256(abi.encode(terms)).
    struct JobTerms {
        /// @dev consumer << 96 | bounty.
        uint256 payment;
        /// @dev revealDeadline << 224 | commitDeadline << 192 | postedAt << 160 | postBlock <<
        /// 128 | minReputation << 112 | replicas << 104 | quorum << 96 | collateral.
        uint256 rules;
        /// @dev keccak256(abi.encode(kernelId, inputHash, inputSize, maxOutputSize,
        /// inputLocation)).
        bytes32 detailsHash;
    }

    /// @notice Deploy parameters of a market.
    struct Params {
        /// @dev address(0) for native ETH, else an exact-transfer ERC-20 (a contract).
        address asset;
        /// @dev Fraction of a failing replica's collateral that is burned, 1..10_000 bps.
        uint256 slashBps;
        /// @dev Minimum bonded stake, 1..2^96-1.
        uint256 minStake;
        /// @dev Largest `replicas` of a job, 1..MAX_REPLICAS_LIMIT.
        uint256 maxReplicas;
        /// @dev Least seconds from the post to `commitDeadline`, >= 1.
        uint256 minCommitWindow;
        /// @dev Least seconds from `commitDeadline` to `revealDeadline`, >= 1.
        uint256 minRevealWindow;
        /// @dev Most seconds from the post to `revealDeadline`, >= minCommitWindow +
        /// minRevealWindow, <= MAX_HORIZON_LIMIT.
        uint256 maxHorizon;
        /// @dev Seconds after an optimistic job's revealDeadline in which its consumer may
        /// challenge it, 1..MAX_HORIZON_LIMIT.
        uint256 challengeWindow;
        /// @dev Replicas m of an escalation job, 2..MAX_REPLICAS_LIMIT.
        uint256 escalationReplicas;
    }

    /// @notice How a job ended.
    enum Outcome {
        Completed,
        NoQuorum,
        Unfilled,
        /// @dev An optimistic job whose escalation's quorum revealed another hash.
        Overturned
    }

    /// @notice Per-replica phase, as returned by `replicaOf`.
    enum ReplicaStatus {
        None,
        Committed,
        Revealed
    }

    /// @notice No live job `jobId` matches the given terms (never posted, wrong spec, or
    /// already settled).
    error EscrowJobNotFound(uint256 jobId);
    /// @notice The spec is invalid at post; `reason` names the field (see postJob).
    error EscrowInvalidSpec(bytes32 reason);
    /// @notice The `window` ("commit": post to commitDeadline, "reveal": commitDeadline to
    /// revealDeadline) is `length` seconds, below the market's `minimum`.
    error EscrowWindowTooShort(bytes32 window, uint256 length, uint256 minimum);
    /// @notice `deadline` is beyond the market's horizon: the latest allowed is `latest`.
    error EscrowDeadlineTooFar(uint256 deadline, uint256 latest);
    /// @notice msg.value must equal the bounty in ETH mode and be zero in ERC-20 mode.
    error EscrowWrongValue(uint256 sent, uint256 expected);
    /// @notice The token moved `actual` instead of `expected` (fee-on-transfer or rebasing
    /// tokens are refused).
    error EscrowTokenNotExact(uint256 expected, uint256 actual);
    /// @notice The commit deadline passed at `deadline`.
    error EscrowCommitClosed(uint256 jobId, uint256 deadline);
    /// @notice All replica slots of the job are taken.
    error EscrowJobFull(uint256 jobId);
    /// @notice The job's draw is fixed by its post block's hash, which no transaction in that
    /// block can read: commit from the next block on.
    error EscrowDrawNotFixed(uint256 jobId);
    /// @notice The hash of `postBlock` (the job's draw) is out of reach (256 blocks, or 8191
    /// with EIP-2935): the job can no longer take slots and will end unfilled.
    error EscrowDrawExpired(uint256 jobId, uint256 postBlock);
    /// @notice `provider` is not (yet) drawn for `jobId`: it becomes eligible at
    /// `eligibleFrom` (0: not before the commit deadline).
    error EscrowNotDrawn(uint256 jobId, address provider, uint256 eligibleFrom);
    /// @notice `provider`'s stake grew in block `bondedAt`, not before the job's post block
    /// `postBlock`: it is not in this job's draw.
    error EscrowStakeTooNew(uint256 jobId, uint256 bondedAt, uint256 postBlock);
    /// @notice The caller's `lane` holds live job `busyJobId` (this job: already committed).
    error EscrowLaneBusy(address provider, uint256 lane, uint256 busyJobId);
    /// @notice The caller's `lane` is not in the phase this call needs (`status`).
    error EscrowWrongReplicaStatus(uint256 jobId, address provider, ReplicaStatus status);
    /// @notice Reveals open once every slot is taken (`committed` of `replicas` so far).
    error EscrowRevealNotOpen(uint256 jobId, uint256 committed, uint256 replicas);
    /// @notice The reveal deadline passed at `deadline`.
    error EscrowRevealClosed(uint256 jobId, uint256 deadline);
    /// @notice The job did not fill its replicas by the commit deadline.
    error EscrowJobUnfilled(uint256 jobId);
    /// @notice The revealed result and salt do not open the stored commitment.
    error EscrowCommitmentMismatch(uint256 jobId, address provider);
    /// @notice The job cannot be finalized before `notBefore` (a deadline + 1).
    error EscrowNotFinalizable(uint256 jobId, uint256 notBefore);
    /// @notice The replica list must hold exactly the job's slots, each as
    /// `uint160(provider) << 96 | lane`, in strictly ascending order: every slot for
    /// finalize (`expected` = committed), every slot but the caller's for the last reveal
    /// (`expected` = replicas - 1); `given` entries were passed.
    error EscrowWrongReplicaSet(uint256 jobId, uint256 given, uint256 expected);
    /// @notice `provider`'s `lane` holds no slot of the job.
    error EscrowNotReplica(uint256 jobId, address provider, uint256 lane);
    /// @notice Another result hash reached the quorum; pass that one (to finalize as
    /// `resultHash`, to the last reveal as `quorumHash`).
    error EscrowNotQuorumResult(uint256 jobId, bytes32 resultHash);
    /// @notice The withdrawal exceeds the credited balance.
    error EscrowInsufficientBalance(uint256 balance, uint256 requested);
    /// @notice Nothing to withdraw (zero amount or zero balance).
    error EscrowNothingToWithdraw();
    /// @notice Sending native ETH failed.
    error EscrowEtherTransferFailed(address to, uint256 amount);
    /// @notice `jobId` is not an optimistic job whose one slot is taken and unchallenged.
    error EscrowNotChallengeable(uint256 jobId);
    /// @notice Only the job's consumer may challenge it; `caller` is not.
    error EscrowNotConsumer(uint256 jobId, address caller);
    /// @notice The challenge window of `jobId` closed at `deadline`.
    error EscrowChallengeClosed(uint256 jobId, uint256 deadline);
    /// @notice `jobId` is challenged: its escalation's settlement settles it.
    error EscrowUnderChallenge(uint256 jobId);
    /// @notice `provider` is the defendant of escalation `jobId`: it cannot judge itself.
    error EscrowExcluded(uint256 jobId, address provider);
    /// @notice A deploy or call parameter is outside its allowed range.
    error EscrowParameterOutOfRange(bytes32 name, uint256 value);
    /// @notice commitResult on a job that has more than one replica, is optimistic or is
    /// an escalation (those keep commit and reveal).
    error EscrowNotSoloJob(uint256 jobId);
    /// @notice A postJobs batch must hold 1..`maximum` specs; it held `length`.
    error EscrowBatchSize(uint256 length, uint256 maximum);
    /// @notice Spec `index` of a postJobs batch is refused: `reason` is the error postJob
    /// reverts with for that spec (EscrowInvalidSpec, EscrowWindowTooShort, ...).
    error EscrowBatchSpecInvalid(uint256 index, bytes reason);

    /// @notice Job `jobId` was posted by `consumer` with `spec`; its bounty is escrowed.
    /// `draw` = postBlock << 32 | postedAt: the post's block number and timestamp, which fix
    /// the job's draw and are part of its terms.
    event JobPosted(
        uint256 indexed jobId, address indexed consumer, uint256 indexed draw, JobSpec spec
    );
    /// @notice `provider` took a slot of `jobId` in its `lane`, locking the job's
    /// collateral, with `commitment`; `drawn`: eligible at the base rate (counts for
    /// reputation).
    event ReplicaCommitted(
        uint256 indexed jobId,
        address indexed provider,
        uint256 lane,
        bytes32 commitment,
        bool drawn
    );
    /// @notice `provider` revealed `resultHash` for `jobId`.
    event ReplicaRevealed(uint256 indexed jobId, address indexed provider, bytes32 resultHash);
    /// @notice `jobId` ended with `outcome` (emitted by finalize, or by the reveal that
    /// completed the job). `resultHash` is the winning hash (zero without a quorum),
    /// `winners` how many replicas revealed it, `slashed` the total burned.
    event JobFinalized(
        uint256 indexed jobId, Outcome outcome, bytes32 resultHash, uint256 winners, uint256 slashed
    );
    /// @notice `provider`'s replica of `jobId` was settled as `settlement`: its collateral
    /// was unlocked, `slashed` of it burned, `payout` credited to its balance, and its
    /// reputation counted.
    event ReplicaSettled(
        uint256 indexed jobId,
        address indexed provider,
        Settlement settlement,
        uint256 payout,
        uint256 slashed
    );
    /// @notice `amount` was credited to the consumer `account`'s withdrawable balance for
    /// `jobId` (a refund). Winners' payouts are in ReplicaSettled.
    event BalanceCredited(address indexed account, uint256 indexed jobId, uint256 amount);
    /// @notice The consumer challenged optimistic job `jobId` with `bond`: escalation job
    /// `escalationId` (posted in the same transaction) recomputes it without `defendant`,
    /// whose slot is in `lane`.
    event JobChallenged(
        uint256 indexed jobId,
        uint256 indexed escalationId,
        address indexed defendant,
        uint256 lane,
        uint256 bond
    );
    /// @notice `account` pre-paid its balance slot and lanes `[0, lanes)` (see openAccount).
    event AccountOpened(address indexed account, uint256 lanes);
    /// @notice `account` withdrew `amount` to its wallet.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice Posts a job and escrows its bounty: ETH mode sends exactly `spec.bounty` as
    /// msg.value; ERC-20 mode approves this contract first. Rules: consumer == msg.sender,
    /// bounty > 0, 1 <= replicas <= maxReplicas, quorum == replicas / 2 + 1, the window
    /// bounds above, revealDeadline < 2^32, inputLocation at most MAX_INPUT_LOCATION bytes,
    /// canonical ABI encoding.
    /// @return jobId The new job's id (a counter starting at 1).
    function postJob(JobSpec calldata spec) external payable returns (uint256 jobId);

    /// @notice Posts `specs` as plain jobs in one call, each validated exactly as postJob
    /// does, with consecutive ids from `firstJobId` and one JobPosted per job, in order,
    /// exactly as postJob emits it (all share this block's `draw`). Escrows the sum of the
    /// bounties: msg.value in ETH mode, one transfer of the sum in ERC-20 mode (msg.value
    /// 0). 1..MAX_BATCH specs (EscrowBatchSize); a refused spec reverts the whole call with
    /// EscrowBatchSpecInvalid(index, reason); canonical ABI encoding (a spec out of place:
    /// EscrowBatchSpecInvalid(index, EscrowInvalidSpec("encoding")); trailing bytes:
    /// EscrowInvalidSpec("encoding")).
    /// @return firstJobId The first job's id; the batch's jobs are `firstJobId + i`.
    function postJobs(JobSpec[] calldata specs) external payable returns (uint256 firstJobId);

    /// @notice Posts an optimistic job (see the notes): as postJob, and also `replicas == 1`
    /// and `collateral * slashBps / 10_000 >= escalationReplicas * bounty`. Its JobPosted
    /// `draw` has bit 64 set (bit 65 marks an escalation job).
    function postOptimisticJob(JobSpec calldata spec) external payable returns (uint256 jobId);

    /// @notice The consumer challenges optimistic job `jobId` (`spec` and `draw` from its
    /// JobPosted; `replica`: its slot as `uint160(provider) << 96 | lane`, from
    /// ReplicaCommitted) until `revealDeadline + challengeWindow`, escrowing a bond of
    /// `escalationReplicas * bounty` (msg.value in ETH mode, approved in ERC-20 mode).
    /// @return escalationId The escalation job's id.
    function challenge(uint256 jobId, JobSpec calldata spec, uint256 draw, uint256 replica)
        external
        payable
        returns (uint256 escalationId);

    /// @notice Takes one replica slot of `jobId` for msg.sender in its `lane` (a free lane:
    /// never used, opened, or holding no live job) with `commitment` =
    /// commitmentOf(jobId, msg.sender, resultHash, salt), locking `collateral` of its free
    /// stake. Needs: now <= commitDeadline, a free slot, the market's minimum stake, a score
    /// >= minReputation, and the draw (see the notes: EscrowStakeTooNew, EscrowNotDrawn).
    /// The first 184 bits of the commitment are stored.
    /// For an optimistic job `commitment` is the result hash itself, revealed at once.
    function commit(uint256 jobId, JobTerms calldata terms, uint256 lane, bytes32 commitment)
        external;

    /// @notice Takes the only slot of a single-replica plain job (replicas == 1, neither
    /// optimistic nor an escalation) with its `resultHash` (resultHashOf(jobId, output)) in
    /// the clear, and settles the job at once, exactly as a commit followed by the reveal
    /// that completes it would: the bounty is credited to msg.sender, the collateral
    /// unlocked, a drawn slot counted as a completion. Nobody else holds a slot that could
    /// copy the hash or outvote it, so hiding it first protects no one and costs a
    /// transaction. Same requirements as commit; any other job: EscrowNotSoloJob. Emits
    /// ReplicaCommitted (commitment = resultHash), ReplicaRevealed, ReplicaSettled and
    /// JobFinalized.
    function commitResult(uint256 jobId, JobTerms calldata terms, uint256 lane, bytes32 resultHash)
        external;

    /// @notice Reveals the committed `resultHash` (resultHashOf(jobId, output)) and
    /// `salt` of the caller's slot in `lane`. The reveal that completes the job (every slot
    /// has now revealed) also settles it in this transaction, exactly as finalize would. The
    /// last two arguments are only read by that last reveal, so earlier reveals may pass
    /// `[]` and zero; a caller that may be last passes them:
    /// `others`: every other slot (from ReplicaCommitted) as `uint160(provider) << 96 |
    /// lane`, strictly ascending; the last reveal reverts with EscrowWrongReplicaSet or
    /// EscrowNotReplica otherwise. Empty for a single-replica job.
    /// `quorumHash`: used only if `resultHash` is not the quorum result: the hash a quorum of
    /// the others revealed; if another hash reached the quorum and `quorumHash` is not it,
    /// the last reveal reverts with EscrowNotQuorumResult.
    function reveal(
        uint256 jobId,
        JobTerms calldata terms,
        uint256 lane,
        bytes32 resultHash,
        bytes32 salt,
        uint256[] calldata others,
        bytes32 quorumHash
    ) external;

    /// @notice Settles `jobId` on every path the last reveal does not: anyone may call once
    /// `now > commitDeadline` for a job short of slots (unfilled), or once
    /// `now > revealDeadline` for a filled job (some replica never revealed);
    /// EscrowNotFinalizable before, EscrowJobNotFound once the job was settled. `replicas`:
    /// every slot (from ReplicaCommitted) as `uint160(provider) << 96 | lane`, strictly
    /// ascending. `resultHash`: the hash revealed by a quorum if there is one (any value
    /// otherwise; reverts with EscrowNotQuorumResult if another hash has a quorum).
    function finalize(
        uint256 jobId,
        JobTerms calldata terms,
        uint256[] calldata replicas,
        bytes32 resultHash
    ) external;

    /// @notice One-time provider set-up (optional): pre-pays the storage slots of the
    /// caller's balance and of its lanes `[0, lanes)` (lanes <= MAX_OPEN_LANES), so that its
    /// commits and settlements write slots that are already non-zero (~17k gas less each).
    function openAccount(uint256 lanes) external;

    /// @notice Sends the caller's whole credited balance to it.
    function withdraw() external;

    /// @notice Sends `amount` of the caller's credited balance to it.
    function withdraw(uint256 amount) external;

    /// @notice The credited, withdrawable balance of `account`.
    function balanceOf(address account) external view returns (uint256);

    /// @notice A live job's stored terms hash prefix, counters and the market's total stake
    /// at its post (rounded up, as the draw uses it); all zero once the job is settled or if
    /// it never existed: history lives in the events.
    function jobState(uint256 jobId)
        external
        view
        returns (bytes24 specHash, uint8 committed, uint8 revealed, uint256 drawTotal);

    /// @notice Whether `provider` may commit to live job `jobId` now as far as the draw goes
    /// (`eligible`), whether it is drawn at the base rate (`drawn`), and from when it is
    /// eligible (`eligibleFrom`; 0: not before the commit deadline). Other checks (stake,
    /// reputation, a free slot, the deadline) are not made here. In the post's own block
    /// the draw is not fixed yet: `eligibleFrom` is then the next second.
    function drawOf(uint256 jobId, JobTerms calldata terms, address provider)
        external
        view
        returns (bool eligible, bool drawn, uint256 eligibleFrom);

    /// @notice `provider`'s phase in live job `jobId` in its `lane`.
    function replicaOf(uint256 jobId, address provider, uint256 lane)
        external
        view
        returns (ReplicaStatus);

    /// @notice The live job held in `provider`'s `lane`, 0 if the lane is free.
    function laneJobOf(address provider, uint256 lane) external view returns (uint256);

    /// @notice The challenge window (seconds after an optimistic job's revealDeadline) and
    /// the replicas of an escalation job.
    function optimisticParams()
        external
        view
        returns (uint256 challengeWindow, uint256 escalationReplicas);

    /// @notice The challenged job, defendant and its lane of live escalation job
    /// `escalationId`; zeros otherwise.
    function escalationOf(uint256 escalationId)
        external
        view
        returns (uint256 jobId, address defendant, uint256 lane);

    /// @notice The id the next posted job gets.
    function nextJobId() external view returns (uint256);

    /// @notice All slashed collateral, burned: held here for good, owed to no one.
    function burned() external view returns (uint256);

    /// @notice keccak256(abi.encode(jobId, provider, resultHash, salt)): what to commit.
    function commitmentOf(uint256 jobId, address provider, bytes32 resultHash, bytes32 salt)
        external
        pure
        returns (bytes32);

    /// @notice abi.encode(block.chainid, address(this), jobId): the 96 bytes that the result
    /// blob of `jobId` starts with (see resultHashOf).
    function resultPrefixOf(uint256 jobId) external view returns (bytes memory);

    /// @notice sha256(resultPrefixOf(jobId) ++ output): the result hash replicas commit to
    /// and reveal. It binds chain id, contract and job id, so no hash revealed in one job is
    /// worth anything in another. Providers serve exactly those bytes (prefix and output) as
    /// a content-addressed blob, so the consumer fetches the agreed hash itself, checks the
    /// prefix and keeps the output.
    function resultHashOf(uint256 jobId, bytes calldata output) external view returns (bytes32);

    /// @notice keccak256(abi.encode(termsOf(spec, draw))); its first 24 bytes are stored.
    function specHashOf(JobSpec calldata spec, uint256 draw) external pure returns (bytes32);

    /// @notice The terms that commit, reveal and finalize take for `spec` posted with
    /// `draw` (JobPosted's: postBlock << 32 | postedAt).
    function termsOf(JobSpec calldata spec, uint256 draw) external pure returns (JobTerms memory);

    /// @notice The payment asset: address(0) for native ETH, else the ERC-20.
    function asset() external view returns (address);
    /// @notice Fraction of a failing replica's collateral that is burned, in basis points.
    function slashBps() external view returns (uint256);
    /// @notice Largest allowed `replicas` of a job.
    function maxReplicas() external view returns (uint256);
    /// @notice The window bounds: least commit window, least reveal window, furthest
    /// reveal deadline after the post (seconds).
    function windows()
        external
        view
        returns (uint256 minCommitWindow, uint256 minRevealWindow, uint256 maxHorizon);
}
