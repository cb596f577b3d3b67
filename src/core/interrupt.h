#pragma once

namespace im::interrupt {

// Installs the SIGINT/SIGTERM handler: the first signal asks running work to stop and drain
// (interrupted() turns true); a second one exits at once with 130.
void install();
// True once a stop was asked for. Lock-free, safe from any thread.
bool requested();
// For tests: forget a previous request.
void reset();

}  // namespace im::interrupt
