#pragma once

#include <functional>
#include <mutex>
#include <string>

// SIGINT/SIGTERM (DESIGN §5): the first signal asks running work to stop and drain, and the
// command writes its partial results marked interrupted. A second signal ends the process with 130
// after running the "last words" the command registered (its partial outputs, marked interrupted);
// a third one, or a second one with no last words, exits at once.
namespace im::interrupt {

// Installs the handlers (once, from main).
void install();
// True once a stop was asked for. Lock-free, safe from any thread.
bool requested();
// For tests: forget a previous request.
void reset();

// Work that writes this command's partial outputs, marked interrupted, if a second signal ends the
// process before the command finishes. Runs on a helper thread (not in the signal handler), in the
// order the keys were first set, each under hold_outputs(); exceptions are reported on stderr.
// Setting a key again replaces its work. Thread-safe.
void set_last_words(const std::string & key, std::function<void()> work);
void clear_last_words(const std::string & key);
// Held while a normal write of an output happens, so that last words never interleave with it.
std::unique_lock<std::recursive_mutex> hold_outputs();
// Runs the registered last words now (what the second signal does, without exiting): for tests.
void run_last_words();

}  // namespace im::interrupt
