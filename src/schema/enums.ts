import { builder } from './builder.ts'
import { EVENT_TYPES, RUN_STATUSES, STEP_STATUSES } from '../engine/interfaces.ts'

export const RunStatusEnum = builder.enumType('RunStatus', { values: RUN_STATUSES })
export const StepStatusEnum = builder.enumType('StepStatus', { values: STEP_STATUSES })
export const EventTypeEnum = builder.enumType('EventType', { values: EVENT_TYPES })
