#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

// The constants of the wire protocol, in one place. FORMAT.md beside this file is the grammar
// they belong to; change both together, and bump kProtocolVersion for any change a peer of the
// previous version would misread.
namespace mrtrain::runtime {

// ---- Frame header (16 bytes, little-endian) ----

// "MRTF" as it appears on the wire: 'M' 'R' 'T' 'F', read as a little-endian u32.
inline constexpr uint32_t kFrameMagic = 0x4654524Du;
// 2: ParamsReply gained part and parts (a large shard answers a pull in several replies).
// 3: MapTaskDone gained peak_rss_bytes.
// 4: map tasks, their reports and their runs name a node of the reduction tree (partition and
// partition_count); reducers sum in tree order. 5: Shutdown gained exit_code.
inline constexpr uint16_t kProtocolVersion = 6;
inline constexpr size_t kFrameHeaderBytes = 16;

// Largest payload a decoder accepts by default once a connection has authenticated.
inline constexpr uint32_t kDefaultMaxFramePayloadBytes = 256u << 20;
// Largest payload accepted before the handshake has finished: handshake frames are tiny, so an
// unauthenticated peer can never make us reserve more than this.
inline constexpr uint32_t kMaxHandshakeFramePayloadBytes = 1024;

// ---- Handshake ----

inline constexpr size_t kHandshakeNonceBytes = 32;
inline constexpr size_t kHandshakeProofBytes = 32;  // HMAC-SHA256
inline constexpr size_t kMaxRejectReasonBytes = 256;

// ---- Collection caps, checked by Decode before anything is allocated ----

inline constexpr uint64_t kMaxNameBytes = 1024;              // worker names, addresses
inline constexpr uint64_t kMaxTextBytes = 1u << 20;          // error messages, JSON lines
inline constexpr uint64_t kMaxJobSpecBytes = 16u << 20;      // a job spec's YAML text
inline constexpr uint64_t kMaxKeysPerMessage = 1u << 24;     // keys in one run or pull
inline constexpr uint64_t kMaxValuesPerMessage = 64u << 20;  // floats in one run (256 MiB)
inline constexpr uint64_t kMaxShardsPerMessage = 1u << 16;   // entries of a shard map
inline constexpr uint64_t kMaxOverrides = 1024;              // --set overrides of a job
inline constexpr uint64_t kMaxSkippedSamples = 64;           // bad records quoted per partition
inline constexpr uint64_t kMaxPlugins = 16;                  // plugin libraries of one job
inline constexpr uint64_t kMaxPluginBytes = 64u << 20;       // one shipped plugin library
inline constexpr uint32_t kMaxReplyParts = 1u << 16;         // ParamsReply parts of one answer

// ---- How a shard host cuts a ParamsReply into parts ----

// Floats and keys in one part: 64 MiB of values and at most 64 MiB of keys and offsets, so a
// part stays well under the default frame limit (256 MiB) and the decode caps.
inline constexpr uint64_t kReplyPartValues = 16u << 20;
inline constexpr uint64_t kReplyPartKeys = 4u << 20;

// ---- Message types ----

// The u16 `type` of a frame. Values are part of the protocol: never renumber, only add.
//   1..15   handshake, raw fixed-layout payloads (handshake.h), before authentication
//   16..63  control plane: master <-> worker, submit client <-> master (messages.h)
//   64..    data plane: worker <-> worker (shuffle pushes, parameter pulls) (messages.h)
enum class MessageType : uint16_t {
  kHandshakeHello = 1,      // client -> server: version, mode, client nonce
  kHandshakeChallenge = 2,  // server -> client: version, mode, server nonce, server proof
  kHandshakeProof = 3,      // client -> server: client proof
  kHandshakeAccept = 4,     // server -> client: authenticated, messages may follow
  kHandshakeReject = 5,     // either way: why the handshake failed; the sender then closes

  kHello = 16,
  kWelcome = 17,
  kHeartbeat = 18,
  kRunMapTask = 19,
  kMapTaskDone = 20,
  kTaskFailed = 21,
  kReduceRound = 22,
  kShardCommitted = 23,
  kJobSpecText = 24,
  kJobStatus = 25,
  kEpochReport = 26,
  kShutdown = 27,
  // 28 was ShardMap, never sent (StartTraining carries the shard addresses); not to be reused.
  kJobReady = 29,
  kLoadPartition = 30,
  kPartitionLoaded = 31,
  kStartTraining = 32,
  kEvaluateTask = 33,
  kEvalDone = 34,
  kSaveShard = 35,
  kShardSaved = 36,
  kEndJob = 37,
  kStatusRequest = 38,
  kCancelJob = 39,
  kRoundProgress = 40,
  kCheckpointCommitted = 41,
  kPredictTask = 42,
  kPredictDone = 43,

  kPushRun = 64,
  kPullParams = 65,
  kParamsReply = 66,
  kPushAck = 67,
};

inline constexpr bool IsHandshakeType(uint16_t type) { return type >= 1 && type <= 15; }

// "Hello", "PushRun", ... for logs; "type 77" for a value that names no type.
std::string MessageTypeName(uint16_t type);

}  // namespace mrtrain::runtime
