#pragma once

#include <string_view>

namespace mrtrain::runtime {

// The status page (GET /): one HTML document with its script and style inline, so it needs no
// other file and no network beyond its own /api/ (its Content-Security-Policy forbids more). It
// polls /api/status every second and the shown job's /api/jobs/N/history, and draws the
// workers and jobs tables and an SVG chart of loss and accuracy per epoch. Every string from
// the API goes into the page as text (textContent), never as markup.
std::string_view StatusPageHtml();

}  // namespace mrtrain::runtime
