import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, StreamViewType, TableEncryptionV2, TableV2, type GlobalSecondaryIndexPropsV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TASKS_TABLE_SCHEMA } from '../lambdas/core/tasks/dynamo-task-store.js';

/** The tasks table: one item per upload, keyed by uniqueId, with the indexes downstream jobs query. */
export class TaskStoreTable extends Construct {
  readonly table: TableV2;

  constructor(scope: Construct, id: string, props: { removalPolicy: RemovalPolicy }) {
    super(scope, id);
    const key = (name: string) => ({ name, type: AttributeType.STRING });
    const globalSecondaryIndexes: GlobalSecondaryIndexPropsV2[] = Object.entries(TASKS_TABLE_SCHEMA.indexes).map(([indexName, index]) => ({
      indexName,
      partitionKey: key(index.partitionKey),
      ...('sortKey' in index ? { sortKey: key(index.sortKey) } : {}),
    }));
    this.table = new TableV2(this, 'Tasks', {
      partitionKey: key(TASKS_TABLE_SCHEMA.partitionKey),
      globalSecondaryIndexes,
      billing: Billing.onDemand(),
      encryption: TableEncryptionV2.awsManagedKey(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      dynamoStream: StreamViewType.NEW_AND_OLD_IMAGES,
      removalPolicy: props.removalPolicy,
      deletionProtection: props.removalPolicy === RemovalPolicy.RETAIN,
    });
  }
}
