// Writes the seeds of corpus/frame_decoder_fuzz, corpus/message_decode_fuzz and
// corpus/frame_rewriter_fuzz (README.md):
//   bazel run //test/fuzz:make_protocol_seeds -- $PWD/test/fuzz/corpus
// Valid encodings from the real encoders, so the fuzzers start past the length checks.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/base/check.h"
#include "runtime/protocol/frame.h"
#include "runtime/protocol/handshake.h"
#include "runtime/protocol/messages.h"

namespace {

namespace fs = std::filesystem;
namespace msg = mrtrain::runtime::msg;
using mrtrain::runtime::MessageType;

void Write(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  MRTRAIN_CHECK(out.good());
}

// A message seed: the index of M in message_decode_fuzz.cc's table, then its payload.
template <typename M>
void WriteMessage(const fs::path& dir, int index, const std::string& name, const M& m) {
  auto bytes = msg::Encode(m);
  MRTRAIN_CHECK(bytes.ok());
  Write(dir / name, std::string(1, static_cast<char>(index)) + *bytes);
}

std::string Frame(MessageType type, const std::string& payload) {
  return mrtrain::runtime::EncodeFrame(static_cast<uint16_t>(type), payload);
}

// A frame rewriter seed: mode and index bytes, four piece bytes (see frame_rewriter_fuzz.cc),
// then the stream.
void WriteRewriterSeed(const fs::path& dir, const std::string& name, uint8_t mode, uint8_t index,
                       const char (&pieces)[5], const std::string& stream) {
  Write(dir / name, std::string{static_cast<char>(mode), static_cast<char>(index)} +
                        std::string(pieces, 4) + stream);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path messages = fs::path(argv[1]) / "message_decode_fuzz";
  const fs::path frames = fs::path(argv[1]) / "frame_decoder_fuzz";
  const fs::path rewriter = fs::path(argv[1]) / "frame_rewriter_fuzz";
  fs::create_directories(messages);
  fs::create_directories(frames);
  fs::create_directories(rewriter);

  WriteMessage(messages, 0, "hello", msg::Hello{"worker-1", 4, "127.0.0.1:7071"});
  WriteMessage(messages, 1, "welcome", msg::Welcome{3, 1000});
  WriteMessage(messages, 2, "heartbeat", msg::Heartbeat{3, 17, 2});
  WriteMessage(messages, 3, "run_map_task", msg::RunMapTask{1, 2, 0, 5, 1, 9, 0.1});
  WriteMessage(messages, 4, "map_task_done",
               msg::MapTaskDone{1, 2, 0, 5, 1, 3.5, 100, 90, 4096, 64 << 20});
  WriteMessage(messages, 5, "task_failed",
               msg::TaskFailed{1, msg::TaskKind::kMap, 2, 0, 5, -1, 1, msg::DataSet::kTrain,
                               mrtrain::StatusCode::kCorruption, "bad line 3"});
  WriteMessage(messages, 6, "reduce_round", msg::ReduceRound{1, 2, 0, 1, 9, 0.1, 6000});
  WriteMessage(messages, 7, "shard_committed", msg::ShardCommitted{1, 2, 0, 1, 9});
  WriteMessage(messages, 8, "job_spec_text",
               msg::JobSpecText{0,
                                "model: linear\n",
                                "job.yaml",
                                {"seed=2"},
                                "/w",
                                0,
                                {std::string(64, '0')},
                                {"\x7f"
                                 "ELF"}});
  WriteMessage(messages, 9, "job_status", msg::JobStatus{1, msg::JobState::kRunning, "{}"});
  WriteMessage(messages, 10, "epoch_report", msg::EpochReport{1, 2, "{\"loss\":1}"});
  WriteMessage(messages, 11, "shutdown", msg::Shutdown{"bye"});
  msg::PushRun push;
  push.keys = {1, 2};
  push.offsets = {0, 2, 3};
  push.values = {1, 2, 3};
  WriteMessage(messages, 12, "push_run", push);
  WriteMessage(messages, 13, "pull_params", msg::PullParams{1, 1, 0, 9, {1, 2, 3}});
  msg::ParamsReply reply;
  reply.keys = {7};
  reply.offsets = {0, 2};
  reply.values = {0.5f, 0.25f};
  reply.part = 1;
  reply.parts = 2;  // the second of two parts
  WriteMessage(messages, 14, "params_reply", reply);
  WriteMessage(messages, 15, "push_ack", msg::PushAck{1, 9, 5, 0, 1, 0, ""});
  WriteMessage(messages, 16, "job_ready", msg::JobReady{1, msg::JobReady::kSpec, 4, 1, 0});
  WriteMessage(messages, 17, "load_partition", msg::LoadPartition{1, msg::DataSet::kTest, 2, 0});
  WriteMessage(messages, 18, "partition_loaded",
               msg::PartitionLoaded{
                   1, msg::DataSet::kTrain, 2, 0, 100, 784, 0, 1, 9.0f, 1, {"a.csv:3: bad"}});
  WriteMessage(messages, 19, "start_training",
               msg::StartTraining{1, 784, 10, 0, 0, 0, {0}, {"a:1", "b:2"}});
  WriteMessage(messages, 20, "evaluate_task",
               msg::EvaluateTask{1, msg::DataSet::kValidation, 0, 0, 7});
  WriteMessage(messages, 21, "eval_done",
               msg::EvalDone{1, msg::DataSet::kTest, 0, 0, 7, 2.5, 10, 9});
  WriteMessage(messages, 22, "save_shard", msg::SaveShard{1, 0, 3, "/out/ckpt/shard"});
  WriteMessage(messages, 23, "shard_saved", msg::ShardSaved{1, 0, 3, 4096, 77});
  WriteMessage(messages, 24, "end_job", msg::EndJob{1});
  WriteMessage(messages, 25, "status_request", msg::StatusRequest{0});
  WriteMessage(messages, 26, "cancel_job", msg::CancelJob{1});
  WriteMessage(messages, 27, "round_progress", msg::RoundProgress{1, 0, 3, 10, 2, 0.5});
  WriteMessage(messages, 28, "checkpoint_committed", msg::CheckpointCommitted{1, 2, 40});
  WriteMessage(messages, 29, "predict_task", msg::PredictTask{1, 3, 0, 300});
  WriteMessage(messages, 30, "predict_done",
               msg::PredictDone{1, 3, 0, 100, 4096, 0xdeadbeef, 90, 1.5, 2, 3, 1, 8192, 7});

  // Frame streams: a flags byte (see frame_decoder_fuzz.cc), then frames.
  std::string hello = std::string("\x01\x00\x00", 3) + std::string(32, 'n');  // insecure
  std::string handshake = Frame(MessageType::kHandshakeHello, hello) +
                          Frame(MessageType::kHandshakeProof, std::string(32, '\0'));
  Write(frames / "insecure_handshake_then_messages",
        std::string(1, '\x03') + handshake + Frame(MessageType::kHeartbeat, "hb") +
            Frame(MessageType::kPushRun, *msg::Encode(push)));
  Write(frames / "byte_by_byte_small_limit",
        std::string(1, '\x04') + handshake + Frame(MessageType::kShutdown, "x"));
  std::string bad_crc = Frame(MessageType::kHeartbeat, "payload");
  bad_crc.back() ^= 1;
  Write(frames / "bad_crc", std::string(1, '\x01') + bad_crc);
  Write(frames / "bad_magic", std::string(1, '\x02') + "GET / HTTP/1.1\r\n\r\n");
  Write(frames / "empty_payloads", std::string(1, '\x0b') +
                                       Frame(MessageType::kHandshakeAccept, "") +
                                       Frame(MessageType::kHandshakeReject, "no"));

  // Frame rewriter streams: a connection's first frames, at once or in pieces of 0 to 63 bytes.
  const std::string conversation = handshake + Frame(MessageType::kHeartbeat, "hb") +
                                   Frame(MessageType::kPushRun, *msg::Encode(push)) +
                                   Frame(MessageType::kPushAck, "");
  WriteRewriterSeed(rewriter, "pass_at_once", 0, 0, "\0\0\0\0", conversation);
  WriteRewriterSeed(rewriter, "duplicate_all_bytewise", 1, 0, "\x01\x01\x01\x01", conversation);
  WriteRewriterSeed(rewriter, "duplicate_frame_2", 1 | 4, 2, "\x07\x10\x03\x28", conversation);
  WriteRewriterSeed(rewriter, "reorder_all_pairs", 2, 0, "\x05\x00\x0b\x3f", conversation);
  WriteRewriterSeed(rewriter, "reorder_pair_at_1", 2 | 4, 1, "\x10\x10\x10\x10", conversation);
  // Piece faults in bits 6-7: none, duplicate, reorder, none.
  WriteRewriterSeed(rewriter, "fault_per_piece", 3, 0, "\x05\x4b\x90\xc1", conversation);
  WriteRewriterSeed(rewriter, "reorder_then_desync", 2, 0, "\x09\x09\x09\x09",
                    handshake + Frame(MessageType::kHeartbeat, "hb") + "GET / HTTP/1.1\r\n\r\n");
  // A header claiming more than kDefaultMaxFramePayloadBytes: never held, passes through.
  std::string oversized = Frame(MessageType::kPushRun, "");
  oversized[11] = '\x20';  // length 512 MiB
  WriteRewriterSeed(rewriter, "duplicate_oversized_frame", 1, 0, "\x03\x11\x02\x05",
                    Frame(MessageType::kHeartbeat, "hb") + oversized + std::string(40, 'p'));
  return 0;
}
