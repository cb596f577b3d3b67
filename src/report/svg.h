#pragma once

#include <string>
#include <utility>
#include <vector>

// Small self-contained SVG charts for the HTML report: no script, no external resources, so the
// report opens offline and prints. docs/architecture.md says why generated SVG over a JS library.
namespace im::report::svg {

struct series {
    std::string name;
    std::string color;                           // CSS color
    std::vector<std::pair<double, double>> points;
    bool dashed = false;
    bool markers = true;
};

struct axis {
    std::string label;
    bool log2 = false;   // x only: powers of two spread evenly
    bool log10 = false;
    bool from_zero = true;
};

// A vertical dashed line at x with a label along it (e.g. where a stage of the run begins).
struct marker {
    double x = 0;
    std::string label;
};

std::string line_chart(const std::string & title, const axis & x, const axis & y, const std::vector<series> & s,
                       int width = 560, int height = 320, const std::vector<marker> & markers = {});

struct bar {
    std::string label;
    double value = 0;
};
std::string bar_chart(const std::string & title, const std::string & y_label, const std::vector<bar> & bars,
                      const std::string & color, int width = 560, int height = 320);

// Bars made of stacked segments (one colour per segment name, a legend above): e.g. a decode step
// split into its parts per W. Every bar has one value per segment name, >= 0.
struct stacked_bar {
    std::string label;
    std::vector<double> values;
};
std::string stacked_bar_chart(const std::string & title, const std::string & y_label,
                              const std::vector<std::pair<std::string, std::string>> & segments,  // name, colour
                              const std::vector<stacked_bar> & bars, int width = 560, int height = 320);

// Escapes &, <, >, " and ' for text and attribute values.
std::string escape(const std::string & s);

}  // namespace im::report::svg
