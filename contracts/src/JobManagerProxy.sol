// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.28;

// The JobManager is deployed behind OpenZeppelin's ERC1967Proxy. Its
// constructor takes (implementation, initData) and delegatecalls initData, so
// passing abi.encodeCall(JobManager.initializeJobManager, (owner, relayer,
// operator)) initializes the proxy in the deploying transaction: there is no
// window in which someone else could initialize it.
//
// This file only pulls the proxy into the build; its artifact is
// out/ERC1967Proxy.json.
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
