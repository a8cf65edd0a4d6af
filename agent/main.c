/* Placeholder until the agent lands. */
#include <stdio.h>

int
main(void)
{
	puts("raywarden-agent");
	return 0;
}
