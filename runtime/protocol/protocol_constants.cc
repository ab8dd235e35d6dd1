#include "runtime/protocol/protocol_constants.h"

namespace mrtrain::runtime {

std::string MessageTypeName(uint16_t type) {
  switch (static_cast<MessageType>(type)) {
    case MessageType::kHandshakeHello:
      return "HandshakeHello";
    case MessageType::kHandshakeChallenge:
      return "HandshakeChallenge";
    case MessageType::kHandshakeProof:
      return "HandshakeProof";
    case MessageType::kHandshakeAccept:
      return "HandshakeAccept";
    case MessageType::kHandshakeReject:
      return "HandshakeReject";
    case MessageType::kHello:
      return "Hello";
    case MessageType::kWelcome:
      return "Welcome";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kRunMapTask:
      return "RunMapTask";
    case MessageType::kMapTaskDone:
      return "MapTaskDone";
    case MessageType::kTaskFailed:
      return "TaskFailed";
    case MessageType::kReduceRound:
      return "ReduceRound";
    case MessageType::kShardCommitted:
      return "ShardCommitted";
    case MessageType::kJobSpecText:
      return "JobSpecText";
    case MessageType::kJobStatus:
      return "JobStatus";
    case MessageType::kEpochReport:
      return "EpochReport";
    case MessageType::kShutdown:
      return "Shutdown";
    case MessageType::kJobReady:
      return "JobReady";
    case MessageType::kLoadPartition:
      return "LoadPartition";
    case MessageType::kPartitionLoaded:
      return "PartitionLoaded";
    case MessageType::kStartTraining:
      return "StartTraining";
    case MessageType::kEvaluateTask:
      return "EvaluateTask";
    case MessageType::kEvalDone:
      return "EvalDone";
    case MessageType::kPredictTask:
      return "PredictTask";
    case MessageType::kPredictDone:
      return "PredictDone";
    case MessageType::kSaveShard:
      return "SaveShard";
    case MessageType::kShardSaved:
      return "ShardSaved";
    case MessageType::kEndJob:
      return "EndJob";
    case MessageType::kStatusRequest:
      return "StatusRequest";
    case MessageType::kCancelJob:
      return "CancelJob";
    case MessageType::kRoundProgress:
      return "RoundProgress";
    case MessageType::kCheckpointCommitted:
      return "CheckpointCommitted";
    case MessageType::kPushRun:
      return "PushRun";
    case MessageType::kPullParams:
      return "PullParams";
    case MessageType::kParamsReply:
      return "ParamsReply";
    case MessageType::kPushAck:
      return "PushAck";
  }
  return "type " + std::to_string(type);
}

}  // namespace mrtrain::runtime
