#include "runtime/http/prometheus_text.h"

#include <cmath>

#include <catch2/catch.hpp>

#include "test/testing/prometheus_parser.h"

namespace mrtrain::runtime {
namespace {

TEST_CASE("label values escape backslash, quote and line feed, and read back") {
  CHECK(EscapePrometheusLabel(R"(a\b"c)"
                              "\nd") == R"(a\\b\"c\nd)");
  PrometheusText text;
  text.Family("m_total", "counter", "help with \\ and\nnewline");
  const std::string hostile = "w\"}\n# TYPE x gauge\nx 1\\";
  text.Sample("m_total", {{"worker", hostile}, {"job", "1"}}, 3);
  CHECK(text.text() ==
        "# HELP m_total help with \\\\ and\\nnewline\n# TYPE m_total counter\n"
        "m_total{worker=\"w\\\"}\\n# TYPE x gauge\\nx 1\\\\\",job=\"1\"} 3\n");
  const auto parsed = testing::ParsePrometheus(text.text());
  INFO(parsed.error);
  REQUIRE(parsed.error.empty());
  REQUIRE(parsed.samples.size() == 1);
  CHECK(parsed.samples[0].labels.at("worker") == hostile);
  CHECK(parsed.types.size() == 1);
}

TEST_CASE("values: integers plain, fractions shortest, non-finite as the format spells them") {
  CHECK(FormatPrometheusValue(0) == "0");
  CHECK(FormatPrometheusValue(123456789012) == "123456789012");
  CHECK(FormatPrometheusValue(0.1) == "0.1");
  CHECK(FormatPrometheusValue(0.005) == "0.005");
  CHECK(FormatPrometheusValue(1.0 / 3) == "0.3333333333333333");
  CHECK(FormatPrometheusValue(std::nan("")) == "NaN");
  CHECK(FormatPrometheusValue(HUGE_VAL) == "+Inf");
  CHECK(FormatPrometheusValue(-HUGE_VAL) == "-Inf");
}

TEST_CASE("a histogram has cumulative buckets up to +Inf, a sum and a count") {
  PrometheusText text;
  text.Family("d_seconds", "histogram", "durations");
  text.Histogram("d_seconds", {{"job", "2"}}, {0.1, 1}, {3, 0, 2}, 7.5);
  CHECK(text.text() ==
        "# HELP d_seconds durations\n# TYPE d_seconds histogram\n"
        "d_seconds_bucket{job=\"2\",le=\"0.1\"} 3\n"
        "d_seconds_bucket{job=\"2\",le=\"1\"} 3\n"
        "d_seconds_bucket{job=\"2\",le=\"+Inf\"} 5\n"
        "d_seconds_sum{job=\"2\"} 7.5\n"
        "d_seconds_count{job=\"2\"} 5\n");
  const auto parsed = testing::ParsePrometheus(text.text());
  INFO(parsed.error);
  CHECK(parsed.error.empty());
  CHECK(parsed.Value("d_seconds_count", {{"job", "2"}}) == 5);
}

TEST_CASE("the test parser refuses malformed lines") {
  CHECK(!testing::ParsePrometheus("x 1\n").error.empty());  // no TYPE
  CHECK(!testing::ParsePrometheus("# TYPE x gauge\nx{a=\"\\q\"} 1\n").error.empty());
  CHECK(!testing::ParsePrometheus("# TYPE x gauge\nx{a=\"b} 1\n").error.empty());
  CHECK(!testing::ParsePrometheus("# TYPE x gauge\nx one\n").error.empty());
  CHECK(!testing::ParsePrometheus("# TYPE x gauge\nx 1").error.empty());
  CHECK(testing::ParsePrometheus("# TYPE x gauge\nx{a=\"b\"} 1\n").error.empty());
}

}  // namespace
}  // namespace mrtrain::runtime
