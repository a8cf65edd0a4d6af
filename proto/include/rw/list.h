/*
 * list.h - an intrusive circular doubly-linked list (after libuv's queue.h
 * and curl's llist).
 *
 * A list is a head node; elements embed a `struct rw_list` and are found
 * back with rw_list_entry(). The head and every linked node always point at
 * valid nodes (an empty list is a head linked to itself), so insertion and
 * removal have no special cases and never allocate.
 *
 * Contracts:
 * - A head is initialised (rw_list_init / RW_LIST_INIT) before use; a
 *   zeroed head is NOT an empty list. A node is initialised before
 *   rw_list_remove or rw_list_empty may see it unlinked.
 * - A node is in at most one list at a time: insert only a node that is in
 *   none (initialised, removed, or fresh: insertion does not read the node's
 *   own links, so a zeroed node that is never removed unlinked is fine).
 * - rw_list_remove() leaves the node self-linked, so removing twice, or
 *   asking rw_list_empty() of a removed node ("is it still linked?"), is safe.
 * - Nothing here locks: a list belongs to one thread (a libuv loop).
 */
#ifndef RW_LIST_H
#define RW_LIST_H

#include <stddef.h>

struct rw_list {
	struct rw_list *prev, *next;
};

/* A head (or a node) linked to itself: an empty list / an unlinked node. */
#define RW_LIST_INIT(name)                                                                         \
	{                                                                                          \
		&(name), &(name)                                                                   \
	}

static inline void
rw_list_init(struct rw_list *l)
{
	l->prev = l;
	l->next = l;
}

/* True when the list has no element (or, of a node, when it is unlinked). */
static inline int
rw_list_empty(const struct rw_list *l)
{
	return l->next == l;
}

/* Link n (in no list) before head: the list's last element. O(1). */
static inline void
rw_list_insert_tail(struct rw_list *head, struct rw_list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* Link n (in no list) after head: the list's first element. O(1). */
static inline void
rw_list_insert_head(struct rw_list *head, struct rw_list *n)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

/*
 * Unlink n from whatever list holds it and leave it self-linked, so a second
 * remove is a no-op and rw_list_empty(n) tells "no longer linked". O(1).
 */
static inline void
rw_list_remove(struct rw_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n;
	n->next = n;
}

/* The first element, or NULL when the list is empty. */
static inline struct rw_list *
rw_list_first(const struct rw_list *head)
{
	return head->next == head ? NULL : head->next;
}

/* The last element, or NULL when the list is empty. */
static inline struct rw_list *
rw_list_last(const struct rw_list *head)
{
	return head->prev == head ? NULL : head->prev;
}

/* The structure of type `type` whose member `member` is the node at ptr. */
#define rw_list_entry(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/*
 * for (pos = each node of head, first to last). The body must not remove pos
 * (use RW_LIST_FOREACH_SAFE for that).
 */
#define RW_LIST_FOREACH(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/*
 * As RW_LIST_FOREACH, but the body may remove (and free) pos: tmp holds the
 * next node, read before the body runs. Removing any node other than pos and
 * tmp is allowed too; removing tmp is not.
 */
#define RW_LIST_FOREACH_SAFE(pos, tmp, head)                                                       \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                           \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif
