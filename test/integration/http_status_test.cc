// The master's status server in a real cluster: /api/status, a job's history and /metrics over
// HTTP from 127.0.0.1 after a job ran (figures checked against the job), the cluster secret in
// no response, a stalled client that delays nobody, and the page rendered by headless Chromium
// while a job runs (skipped, saying so, where `chromium` is not installed).
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include <catch2/catch.hpp>

#include "test/integration/cluster_harness.h"
#include "test/testing/http_client.h"
#include "test/testing/prometheus_parser.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kSecretValue[] = "integration-test-secret-0123456789";

// A cluster whose master serves the status page; returns the page's address.
std::string StartWithPage(TempDir& dir, Cluster& cluster) {
  auto address = cluster.group().WaitForFile(dir.File("http.address"), 30s, cluster.master());
  INFO(address.status().ToString());
  REQUIRE(address.ok());
  return *address;
}

std::vector<std::string> PageFlags(TempDir& dir) {
  return {"--http-listen", "127.0.0.1:0", "--http-address-file", dir.File("http.address")};
}

nlohmann::json GetJson(const std::string& http, const std::string& target) {
  HttpReply reply = HttpFetch(http, target);
  INFO(target << ": " << reply.head << "\n" << reply.body);
  REQUIRE(reply.status == 200);
  return nlohmann::json::parse(reply.body);
}

TEST_CASE("status API, history and metrics of a job that ran, over HTTP", "[integration]") {
  TempDir dir;
  Cluster cluster(dir, 2, PageFlags(dir));
  const std::string http = StartWithPage(dir, cluster);
  cluster.AddWorkers(2);
  // A client that sends half a request and stalls through the whole job.
  HttpClient stalled(http);
  stalled.Send("GET /api/status HTTP/1.1\r\nHost: x");

  const std::string spec = WriteJob(dir, "page", "{type: logistic}", "{reducers: 2}",
                                    "{epochs: 3, rounds_per_epoch: 6, seed: 7}");
  Output out = cluster.Submit(spec);
  INFO(out.text);
  REQUIRE(out.exit_code == 0);

  const auto start = std::chrono::steady_clock::now();
  const nlohmann::json status = GetJson(http, "/api/status");
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  INFO(status.dump(1));
  REQUIRE(status["workers"].size() == 2);
  for (const auto& w : status["workers"]) {
    CHECK(w["slots"] == 1);
    CHECK(w["heartbeat_age_ms"].get<int64_t>() < 5000);
    CHECK(w["current_tasks"].empty());
  }
  REQUIRE(status["jobs"].size() == 1);
  const nlohmann::json job = status["jobs"][0];
  CHECK(job["name"] == "page");
  CHECK(job["state"] == "succeeded");
  CHECK(job["epoch"] == 3);
  CHECK(job["round"] == 6);
  CHECK(job["rounds"] == 18);
  CHECK(job["examples"] == 3 * 3000);
  CHECK(job["recoveries"] == 0);
  CHECK(job["backup_attempts"].get<int64_t>() >= 0);
  CHECK(job["bytes_shuffled"].get<int64_t>() > 0);
  CHECK(job["eta_sec"] == 0.0);

  // The history is the job's metrics.jsonl, epoch by epoch.
  const nlohmann::json history = GetJson(http, "/api/jobs/" + job["id"].dump() + "/history");
  std::ifstream lines(dir.File("page/metrics.jsonl"));
  std::string line;
  size_t epoch = 0;
  while (std::getline(lines, line)) {
    const nlohmann::json written = nlohmann::json::parse(line);
    REQUIRE(epoch < history["epochs"].size());
    const nlohmann::json& shown = history["epochs"][epoch++];
    CHECK(shown["epoch"] == written["epoch"]);
    CHECK(shown["train_loss"] == written["train_loss"]);
    CHECK(shown["test_loss"] == written["test_loss"]);
    CHECK(shown["test_accuracy"] == written["test_accuracy"]);
  }
  CHECK(epoch == 3);
  CHECK(history["epochs"].size() == 3);
  CHECK(job["train_loss"] == history["epochs"][2]["train_loss"]);

  // /metrics: every line well-formed, the counters those of the job.
  HttpReply metrics = HttpFetch(http, "/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(metrics.head.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  const PrometheusExposition e = ParsePrometheus(metrics.body);
  INFO(metrics.body);
  INFO(e.error);
  REQUIRE(e.error.empty());
  const std::string id = job["id"].dump();
  CHECK(e.Value("mrtrain_workers") == 2);
  CHECK(e.Value("mrtrain_rounds_total", {{"job", id}}) == 18);
  CHECK(e.Value("mrtrain_recoveries_total", {{"job", id}}) == 0);
  CHECK(e.Value("mrtrain_job_train_loss", {{"job", id}}) ==
        history["epochs"][2]["train_loss"].get<double>());
  CHECK(e.Value("mrtrain_jobs", {{"state", "succeeded"}}) == 1);
  CHECK(e.Value("mrtrain_dropped_results_total") == status["dropped_results"].get<double>());
  double examples = 0, bytes = 0, tasks = 0, backups = 0;
  for (const char* worker : {"w0", "w1"}) {
    const std::map<std::string, std::string> labels = {{"job", id}, {"worker", worker}};
    examples += e.Value("mrtrain_examples_total", labels).value_or(-1);
    bytes += e.Value("mrtrain_shuffle_bytes_total", labels).value_or(-1);
    tasks += e.Value("mrtrain_map_task_duration_seconds_count", labels).value_or(-1);
    backups += e.Value("mrtrain_backup_attempts_total", labels).value_or(-1);
    auto inf = labels;
    inf["le"] = "+Inf";
    CHECK(e.Value("mrtrain_map_task_duration_seconds_bucket", inf) ==
          e.Value("mrtrain_map_task_duration_seconds_count", labels));
  }
  CHECK(examples == 3 * 3000);
  CHECK(bytes == job["bytes_shuffled"].get<double>());
  // Epochs x rounds x map tasks, one accepted result each: 5 partitions on 2 workers make map
  // tasks of up to 2 partitions (nodes [0,2), [2,4), [4,5) of the reduction tree).
  CHECK(tasks == 3 * 6 * 3);
  CHECK(backups == job["backup_attempts"].get<double>());

  // Read-only, and the secret appears nowhere.
  for (const char* target :
       {"/", "/api/status", "/api/jobs/1/history", "/metrics", "/nope", "/api/jobs/99/history"}) {
    for (const char* method : {"GET", "HEAD", "POST", "PUT", "DELETE"}) {
      HttpReply reply = HttpFetch(http, target, method);
      INFO(method << " " << target);
      const bool read = std::string(method) == "GET" || std::string(method) == "HEAD";
      CHECK((read ? reply.status != 405 : reply.status == 405));
      CHECK(reply.head.find(kSecretValue) == std::string::npos);
      CHECK(reply.body.find(kSecretValue) == std::string::npos);
    }
  }
  // The stalled client, finishing its request within its deadline, is answered too.
  stalled.Send("\r\n\r\n");
  const std::string late = stalled.ReadAll();
  CHECK((late.empty() || late.rfind("HTTP/1.1 200 OK\r\n", 0) == 0));  // empty: past 5 s
}

bool HaveChromium() { return std::system("command -v chromium >/dev/null 2>&1") == 0; }

TEST_CASE("headless Chromium renders the jobs table and the loss chart while a job runs",
          "[integration][browser]") {
  if (!HaveChromium()) {
    WARN(
        "SKIPPED: `chromium` is not installed (apt-get install -y chromium); the status page "
        "was not checked in a browser");
    return;
  }
  TempDir dir;
  Cluster cluster(dir, 1, PageFlags(dir));
  const std::string http = StartWithPage(dir, cluster);
  cluster.AddWorkers(2);
  const std::string spec = WriteJob(dir, "browser", "{type: logistic}", "{reducers: 2}",
                                    "{epochs: 5000, rounds_per_epoch: 2, seed: 7}");
  const pid_t submit = cluster.SubmitAsync(spec, dir.File("submit.log"));
  // Until the job has two epochs to draw.
  nlohmann::json job = nlohmann::json::object();
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (true) {
    const nlohmann::json status = GetJson(http, "/api/status");
    if (!status["jobs"].empty()) job = status["jobs"][0];
    if (job.value("state", "") == "running" && job.value("epoch", 0) >= 3) break;
    INFO(status.dump() << "\n" << TempDir::Read(dir.File("submit.log")));
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(50ms);
  }
  const std::string id = job["id"].dump();
  // Chromium writes its profile under the test's folder; the virtual time budget lets the
  // page's fetches and first renders finish before the DOM is dumped.
  const std::string dom_file = dir.File("dom.html");
  const std::string cmd = "HOME=" + dir.File("") +
                          " timeout 60 chromium --headless --no-sandbox "
                          "--disable-gpu --no-first-run --user-data-dir=" +
                          dir.File("chromium-profile") +
                          " --virtual-time-budget=5000 --dump-dom http://" + http + "/ > " +
                          dom_file + " 2> " + dir.File("chromium.log");
  const int rc = std::system(cmd.c_str());
  const std::string dom = TempDir::Read(dom_file);
  INFO("chromium exit " << rc << "\n"
                        << TempDir::Read(dir.File("chromium.log")) << "\nDOM:\n"
                        << dom);
  REQUIRE(rc == 0);
  // The job's row: id, name, state.
  const size_t row = dom.find("<tr id=\"job-" + id + "\"");
  REQUIRE(row != std::string::npos);
  const std::string row_html = dom.substr(row, dom.find("</tr>", row) - row);
  CHECK(row_html.find(">browser<") != std::string::npos);
  CHECK(row_html.find(">running<") != std::string::npos);
  // Both workers listed.
  CHECK(dom.find(">w0<") != std::string::npos);
  CHECK(dom.find(">w1<") != std::string::npos);
  // The loss chart: an SVG path through at least 3 epochs' points.
  for (const char* series : {"train_loss", "test_loss", "test_accuracy"}) {
    INFO(series);
    const size_t at = dom.find(std::string("class=\"series ") + series + "\"");
    REQUIRE(at != std::string::npos);
    const size_t path = dom.rfind("<path d=\"M", at);
    REQUIRE(path != std::string::npos);
    const std::string d = dom.substr(path, at - path);
    CHECK(std::count(d.begin(), d.end(), 'L') >= 2);
  }
  CHECK(dom.find("History of job " + id + " (browser)") != std::string::npos);
  // Closing the submitter cancels the job.
  kill(submit, SIGTERM);
  REQUIRE(cluster.group().Wait(submit, 30s).ok());
}

}  // namespace
}  // namespace mrtrain::testing
