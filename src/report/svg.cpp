#include "report/svg.h"

#include "core/escape.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace im::report::svg {

std::string escape(const std::string & s) { return esc::html(s); }

namespace {

constexpr int margin_left = 64, margin_right = 16, margin_top = 36, margin_bottom = 48;

double tx(double v, const axis & a) {
    if (a.log2) return std::log2(std::max(v, 1e-12));
    if (a.log10) return std::log10(std::max(v, 1e-300));
    return v;
}

std::string tick_label(double v) {
    if (std::fabs(v) >= 1e12) return fmt::format("{:.3g}T", v / 1e12);
    if (std::fabs(v) >= 1e9) return fmt::format("{:.3g}G", v / 1e9);
    if (std::fabs(v) >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
    if (std::fabs(v) >= 1e4) return fmt::format("{:.3g}k", v / 1e3);
    if (std::fabs(v) >= 100 || v == std::round(v)) return fmt::format("{:.0f}", v);
    return fmt::format("{:.3g}", v);
}

// "Nice" linear ticks (1, 2, 5 × 10^k) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
    std::vector<double> t;
    if (!(hi > lo)) hi = lo + 1;
    const double raw = (hi - lo) / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double step = raw / mag < 1.5 ? mag : raw / mag < 3 ? 2 * mag : raw / mag < 7 ? 5 * mag : 10 * mag;
    for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
    return t;
}

struct frame {
    int w, h;
    double x0, x1, y0, y1;
    double px(double v) const { return margin_left + (v - x0) / (x1 - x0) * (w - margin_left - margin_right); }
    double py(double v) const { return h - margin_bottom - (v - y0) / (y1 - y0) * (h - margin_top - margin_bottom); }
};

std::string open_svg(const std::string & title, int width, int height) {
    return fmt::format("<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" "
                       "height=\"{1}\" role=\"img\" aria-label=\"{2}\"><rect width=\"{0}\" height=\"{1}\" fill=\"#fff\"/>"
                       "<text x=\"{3}\" y=\"22\" text-anchor=\"middle\" class=\"title\">{2}</text>",
                       width, height, escape(title), width / 2);
}

std::string axes(const frame & f, const axis & x, const axis & y, const std::vector<double> & xt, const std::vector<double> & yt) {
    std::string s;
    for (double v : yt) {
        s += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"grid\"/>"
                         "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" class=\"tick\">{}</text>",
                         f.px(f.x0), f.px(f.x1), f.py(v), f.py(v), f.px(f.x0) - 6, f.py(v) + 4,
                         y.log10 ? tick_label(std::pow(10.0, v)) : tick_label(v));
    }
    const size_t every = xt.size() > 10 ? 2 : 1;
    for (size_t i = 0; i < xt.size(); i += every) {
        const double v = xt[i];
        const double label = x.log2 ? std::pow(2.0, v) : x.log10 ? std::pow(10.0, v) : v;
        s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" class=\"tick\">{}</text>", f.px(v),
                         f.py(f.y0) + 16, tick_label(label));
    }
    s += fmt::format("<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" class=\"axis\"/>"
                     "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{2:.1f}\" y2=\"{3:.1f}\" class=\"axis\"/>",
                     f.px(f.x0), f.px(f.x1), f.py(f.y0), f.py(f.y1));
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" class=\"label\">{}</text>",
                     (f.px(f.x0) + f.px(f.x1)) / 2, f.h - 8, escape(x.label));
    s += fmt::format("<text transform=\"translate(14 {:.1f}) rotate(-90)\" text-anchor=\"middle\" class=\"label\">{}</text>",
                     (f.py(f.y0) + f.py(f.y1)) / 2, escape(y.label));
    return s;
}

}  // namespace

std::string line_chart(const std::string & title, const axis & x, const axis & y, const std::vector<series> & all,
                       int width, int height, const std::vector<marker> & markers) {
    double x0 = std::numeric_limits<double>::max(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const auto & s : all) {
        for (const auto & [px, py] : s.points) {
            x0 = std::min(x0, tx(px, x)); x1 = std::max(x1, tx(px, x));
            y0 = std::min(y0, tx(py, y)); y1 = std::max(y1, tx(py, y));
        }
    }
    std::string out = open_svg(title, width, height);
    if (x0 > x1) {
        return out + fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"tick\">no data</text></svg>",
                                 width / 2, height / 2);
    }
    if (y.from_zero && !y.log10) y0 = std::min(0.0, y0);
    if (y.log10) { y0 = std::floor(y0); y1 = std::ceil(y1); }
    if (x1 == x0) { x0 -= 1; x1 += 1; }
    if (y1 == y0) { y1 = y0 + 1; }
    std::vector<double> yt;
    if (y.log10) { for (double v = y0; v <= y1; v += 1) yt.push_back(v); }
    else { yt = nice_ticks(y0, y1 * 1.05); y1 = std::max(y1 * 1.05, yt.back()); }
    std::vector<double> xt;
    if (x.log2 || x.log10) { for (double v = std::ceil(x0); v <= x1 + 1e-9; v += 1) xt.push_back(v); }
    else xt = nice_ticks(x0, x1);
    const frame f{width, height, x0, x1, y0, y1};
    out += axes(f, x, y, xt, yt);
    for (const auto & m : markers) {
        const double mx = tx(m.x, x);
        if (mx < x0 || mx > x1) continue;
        out += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#8a93a1\" "
                           "stroke-dasharray=\"3 3\"/><text transform=\"translate({3:.1f} {4:.1f}) rotate(-90)\" "
                           "class=\"tick\">{5}</text>",
                           f.px(mx), f.py(y0), f.py(y1), f.px(mx) + 11, f.py(y0) - 4, escape(m.label));
    }
    int legend_y = margin_top + 4;
    for (const auto & s : all) {
        std::string d;
        for (const auto & [px, py] : s.points) {
            d += fmt::format("{}{:.1f},{:.1f}", d.empty() ? "M" : " L", f.px(tx(px, x)), f.py(tx(py, y)));
        }
        out += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>", d, s.color,
                           s.dashed ? " stroke-dasharray=\"6 4\"" : "");
        if (s.markers) {
            for (const auto & [px, py] : s.points) {
                out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"><title>{}: {} at {}</title></circle>",
                                   f.px(tx(px, x)), f.py(tx(py, y)), s.color, escape(s.name), tick_label(py), tick_label(px));
            }
        }
        out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"2\"{4}/>"
                           "<text x=\"{5}\" y=\"{6}\" class=\"legend\">{7}</text>",
                           margin_left + 12, margin_left + 32, legend_y, s.color, s.dashed ? " stroke-dasharray=\"6 4\"" : "",
                           margin_left + 38, legend_y + 4, escape(s.name));
        legend_y += 16;
    }
    return out + "</svg>";
}

std::string bar_chart(const std::string & title, const std::string & y_label, const std::vector<bar> & bars,
                      const std::string & color, int width, int height) {
    std::string out = open_svg(title, width, height);
    if (bars.empty()) {
        return out + fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"tick\">no data</text></svg>",
                                 width / 2, height / 2);
    }
    double top = 0;
    for (const auto & b : bars) top = std::max(top, b.value);
    const auto yt = nice_ticks(0, top * 1.05);
    const frame f{width, height, 0, static_cast<double>(bars.size()), 0, std::max(top * 1.05, yt.back())};
    out += axes(f, axis{"", false, false, true}, axis{y_label, false, false, true}, {}, yt);
    const double bw = (f.px(1) - f.px(0)) * 0.85;
    const size_t label_every = std::max<size_t>(1, bars.size() / 8);
    for (size_t i = 0; i < bars.size(); ++i) {
        const double x = f.px(static_cast<double>(i)) + (f.px(1) - f.px(0)) * 0.075;
        out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{}: {}</title></rect>",
                           x, f.py(bars[i].value), bw, f.py(0) - f.py(bars[i].value), color, escape(bars[i].label),
                           tick_label(bars[i].value));
        if (i % label_every == 0) {
            out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" class=\"tick\">{}</text>",
                               x + bw / 2, f.py(0) + 16, escape(bars[i].label));
        }
    }
    return out + "</svg>";
}

std::string stacked_bar_chart(const std::string & title, const std::string & y_label,
                              const std::vector<std::pair<std::string, std::string>> & segments,
                              const std::vector<stacked_bar> & bars, int width, int height) {
    std::string out = open_svg(title, width, height);
    if (bars.empty()) {
        return out + fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"tick\">no data</text></svg>",
                                 width / 2, height / 2);
    }
    double top = 0;
    for (const auto & b : bars) {
        double sum = 0;
        for (double v : b.values) sum += std::max(0.0, v);
        top = std::max(top, sum);
    }
    const auto yt = nice_ticks(0, top * 1.05);
    const frame f{width, height, 0, static_cast<double>(bars.size()), 0, std::max(top * 1.05, yt.back())};
    out += axes(f, axis{"", false, false, true}, axis{y_label, false, false, true}, {}, yt);
    const double bw = (f.px(1) - f.px(0)) * 0.7;
    for (size_t i = 0; i < bars.size(); ++i) {
        const double x = f.px(static_cast<double>(i)) + (f.px(1) - f.px(0)) * 0.15;
        double base = 0;
        for (size_t k = 0; k < segments.size() && k < bars[i].values.size(); ++k) {
            const double v = std::max(0.0, bars[i].values[k]);
            out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                               x, f.py(base + v), bw, f.py(base) - f.py(base + v), segments[k].second,
                               escape(bars[i].label), escape(segments[k].first), tick_label(v));
            base += v;
        }
        out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" class=\"tick\">{}</text>", x + bw / 2,
                           f.py(0) + 16, escape(bars[i].label));
    }
    for (size_t k = 0; k < segments.size(); ++k) {
        const double lx = 60 + static_cast<double>(k) * (width - 80) / static_cast<double>(segments.size());
        out += fmt::format("<rect x=\"{:.1f}\" y=\"30\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"39\" "
                           "class=\"tick\">{}</text>", lx, segments[k].second, lx + 14, escape(segments[k].first));
    }
    return out + "</svg>";
}

}  // namespace im::report::svg
