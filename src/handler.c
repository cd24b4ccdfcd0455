/* handler: the table of route handlers (see handler.h). */
#include "handler.h"

#include <string.h>

static const struct wt_handler_ops *const handlers[] = {
    &handler_echo,
    &handler_broadcast,
    &handler_forward,
};

const struct wt_handler_ops *handler_find(const char *name)
{
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (strcmp(handlers[i]->name, name) == 0)
            return handlers[i];
    return NULL;
}
