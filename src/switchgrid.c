/*-------------------------------------------------------------------------
 * switchgrid.c
 *	  Module entry point: defines the settings when the library is loaded.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "compat.h"
#include "guc.h"
#include "miscadmin.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	sg_define_gucs();
	MarkGUCPrefixReserved("switchgrid");

	/* the worker, and the shared memory it needs, exist only when preloaded */
	if (process_shared_preload_libraries_in_progress)
		sg_worker_register();
}
