// libFuzzer target for message decoding (runtime/protocol/messages.cc), the Boost.Serialization
// code that runs on every payload an authenticated peer sends.
//
// Input: one byte choosing the message (modulo the number of messages, in the order of
// kDecoders below), then the payload.
//
// Checks: Decode never crashes, throws or over-allocates (the caps and the bytes-left check), and
// the encoding is canonical: a payload that decodes re-encodes to exactly the same bytes, also
// through the encoders that leave a run's floats in place (EncodeGather, EncodeReplyPart).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "engine/base/check.h"
#include "engine/base/status.h"
#include "runtime/protocol/messages.h"
#include "shuffle/buffer/run.h"

namespace {

namespace msg = mrtrain::runtime::msg;

template <typename M>
void DecodeAndReencode(std::string_view payload) {
  M m;
  if (!msg::Decode(payload, &m).ok()) return;
  mrtrain::Result<std::string> bytes = msg::Encode(m);
  MRTRAIN_CHECK(bytes.ok());
  MRTRAIN_CHECK(*bytes == payload);
  if constexpr (std::is_same_v<M, msg::PushRun>) {
    mrtrain::Result<mrtrain::runtime::GatherPayload> gathered =
        msg::EncodeGather(std::make_shared<const msg::PushRun>(std::move(m)));
    MRTRAIN_CHECK(gathered.ok());
    MRTRAIN_CHECK(gathered->Join() == payload);
  } else if constexpr (std::is_same_v<M, msg::ParamsReply>) {
    auto run = std::make_shared<const mrtrain::shuffle::Run>(msg::TakeRun(&m));
    mrtrain::Result<mrtrain::runtime::GatherPayload> part =
        msg::EncodeReplyPart(m, run, 0, run->keys.size());
    MRTRAIN_CHECK(part.ok());
    MRTRAIN_CHECK(part->Join() == payload);
  }
}

using Decoder = void (*)(std::string_view);
constexpr Decoder kDecoders[] = {
    DecodeAndReencode<msg::Hello>,
    DecodeAndReencode<msg::Welcome>,
    DecodeAndReencode<msg::Heartbeat>,
    DecodeAndReencode<msg::RunMapTask>,
    DecodeAndReencode<msg::MapTaskDone>,
    DecodeAndReencode<msg::TaskFailed>,
    DecodeAndReencode<msg::ReduceRound>,
    DecodeAndReencode<msg::ShardCommitted>,
    DecodeAndReencode<msg::JobSpecText>,
    DecodeAndReencode<msg::JobStatus>,
    DecodeAndReencode<msg::EpochReport>,
    DecodeAndReencode<msg::Shutdown>,
    DecodeAndReencode<msg::PushRun>,
    DecodeAndReencode<msg::PullParams>,
    DecodeAndReencode<msg::ParamsReply>,
    DecodeAndReencode<msg::PushAck>,
    DecodeAndReencode<msg::JobReady>,
    DecodeAndReencode<msg::LoadPartition>,
    DecodeAndReencode<msg::PartitionLoaded>,
    DecodeAndReencode<msg::StartTraining>,
    DecodeAndReencode<msg::EvaluateTask>,
    DecodeAndReencode<msg::EvalDone>,
    DecodeAndReencode<msg::SaveShard>,
    DecodeAndReencode<msg::ShardSaved>,
    DecodeAndReencode<msg::EndJob>,
    DecodeAndReencode<msg::StatusRequest>,
    DecodeAndReencode<msg::CancelJob>,
    DecodeAndReencode<msg::RoundProgress>,
    DecodeAndReencode<msg::CheckpointCommitted>,
    DecodeAndReencode<msg::PredictTask>,
    DecodeAndReencode<msg::PredictDone>,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  constexpr size_t kCount = sizeof(kDecoders) / sizeof(kDecoders[0]);
  kDecoders[data[0] % kCount](std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  return 0;
}
