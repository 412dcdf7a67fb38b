// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A fee-on-transfer ERC-20 (test only): every transfer delivers `amount - fee` to
/// the recipient and burns `fee = amount * feeBps / 10_000`; anyone may mint and set the fee.
contract FeeOnTransferToken is ERC20 {
    uint256 public feeBps;

    constructor(uint256 feeBps_) ERC20("Fee Token", "FEE") {
        feeBps = feeBps_;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setFee(uint256 feeBps_) external {
        feeBps = feeBps_;
    }

    /// @dev What the recipient of a transfer of `amount` receives.
    function delivered(uint256 amount) public view returns (uint256) {
        return amount - amount * feeBps / 10_000;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) return super._update(from, to, value);
        uint256 net = delivered(value);
        super._update(from, to, net);
        if (value > net) super._update(from, address(0), value - net);
    }
}

/// @notice A share-based rebasing ERC-20 (test only, in the style of stETH): accounts hold
/// shares, `balanceOf = shares * index / 1e18`, and a transfer of `amount` moves
/// `amount * 1e18 / index` shares (rounded down). `rebase` changes the index for everyone,
/// so balances change without transfers and transfers are inexact once the index is not 1.
contract RebasingToken {
    uint256 public constant ONE = 1e18;
    uint256 public index = ONE;
    mapping(address => uint256) public sharesOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function mint(address to, uint256 amount) external {
        sharesOf[to] += amount * ONE / index;
    }

    function rebase(uint256 newIndex) external {
        index = newIndex;
    }

    function balanceOf(address who) public view returns (uint256) {
        return sharesOf[who] * index / ONE;
    }

    /// @dev How much the sender's balance drops, and the recipient's grows, when `holder`
    /// (holding its current shares) transfers `amount` to an account with `toShares`.
    function moved(uint256 holderShares, uint256 toShares, uint256 amount)
        public
        view
        returns (uint256 debited, uint256 credited)
    {
        uint256 shares = amount * ONE / index;
        debited = holderShares * index / ONE - (holderShares - shares) * index / ONE;
        credited = (toShares + shares) * index / ONE - toShares * index / ONE;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        if (allowance[from][msg.sender] != type(uint256).max) {
            allowance[from][msg.sender] -= amount;
        }
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) internal {
        uint256 shares = amount * ONE / index;
        sharesOf[from] -= shares;
        sharesOf[to] += shares;
        emit Transfer(from, to, amount);
    }
}

/// @notice Called by HookToken on a transfer's sender before the balances move (the
/// ERC-777 `tokensToSend` order).
interface ISendHook {
    function beforeSend(address to, uint256 amount) external;
}

/// @notice An exact ERC-20 with a sender hook (test only): `transferFrom` first calls
/// `beforeSend` on a sender that is a contract, then moves exactly `amount`.
contract HookToken is ERC20 {
    constructor() ERC20("Hook Token", "HOOK") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) public override returns (bool) {
        if (from.code.length != 0) ISendHook(from).beforeSend(to, amount);
        return super.transferFrom(from, to, amount);
    }
}
