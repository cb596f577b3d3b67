/* A recorded NVML for tests (telemetry/energy.h): the entry points infermeter resolves with dlsym,
 * returning figures recorded from an H200 (name, power, memory, utilisation, SM clock); the energy
 * counter advances by 700 J per read, as a GPU at 700 W read once a second would. */
#include <string.h>

static unsigned long long energy_mj = 123456789ULL;
static int initialized = 0;

int nvmlInit_v2(void) { initialized = 1; return 0; }
int nvmlShutdown(void) { initialized = 0; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned index, void ** device) {
    static int the_device;
    if (!initialized) return 1;          /* NVML_ERROR_UNINITIALIZED */
    if (index != 0) return 2;            /* NVML_ERROR_INVALID_ARGUMENT */
    *device = &the_device;
    return 0;
}
int nvmlDeviceGetName(void * device, char * name, unsigned length) {
    (void)device;
    strncpy(name, "NVIDIA H200 (recorded)", length - 1);
    name[length - 1] = 0;
    return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(void * device, unsigned long long * mj) {
    (void)device;
    energy_mj += 700000ULL;
    *mj = energy_mj;
    return 0;
}
int nvmlDeviceGetPowerUsage(void * device, unsigned * mw) { (void)device; *mw = 412345; return 0; }
struct memory { unsigned long long total, free, used; };
int nvmlDeviceGetMemoryInfo(void * device, struct memory * m) {
    (void)device;
    m->total = 150754820096ULL;
    m->used = 3221225472ULL;
    m->free = m->total - m->used;
    return 0;
}
struct utilization { unsigned gpu, memory; };
int nvmlDeviceGetUtilizationRates(void * device, struct utilization * u) { (void)device; u->gpu = 87; u->memory = 41; return 0; }
int nvmlDeviceGetClockInfo(void * device, int type, unsigned * mhz) { (void)device; *mhz = type == 1 ? 1980 : 0; return 0; }
